"""Sans-I/O resolution engine: produces queries to send, consumes responses and timeouts."""
