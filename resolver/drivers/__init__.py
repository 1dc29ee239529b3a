"""I/O drivers for the engine (asyncio UDP/TCP)."""
