"""Many UDP datagrams per system call: Linux recvmmsg(2) and sendmmsg(2) through ctypes.

A DNS server on loopback spends most of each answer in the kernel, entering it twice per
query and waking the client once per reply; NSD reads and writes in batches for that reason.
The standard library has no binding for these calls, so this module declares the C structures
(``struct mmsghdr``, ``struct iovec``) once and keeps every buffer preallocated: a batch costs
two calls, one reset of the headers (one memmove from a template) and, per datagram, one copy
of the query out (the cache key) and one copy of the answer in, over the query.

``Batch.receive`` fills up to ``size`` slots; ``data(i)`` and ``peer(i)`` read slot ``i``;
``reply(i, response)`` queues a response to slot ``i``'s sender and ``flush`` sends every queued
one (a send that would block is dropped: the client retries, RFC 1035 §4.2.1).
``available()`` is False where the calls do not exist (not Linux, no libc): callers then use
``socket.recvfrom``/``sendto``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import socket
import struct

MAX_DATAGRAM = 65535  # the largest UDP payload: never truncate what recvfrom would have read
_NAME_SIZE = 32  # room for a sockaddr_in6 (28 octets)
_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_HDR = ctypes.sizeof(_Mmsghdr)
_NAME_AT = _Mmsghdr.msg_hdr.offset + _Msghdr.msg_name.offset
_FLAGS_AT = _Mmsghdr.msg_hdr.offset + _Msghdr.msg_flags.offset
_LEN_AT = _Mmsghdr.msg_len.offset
_IOV_LEN_AT = _Iovec.iov_len.offset
_IOVEC = ctypes.sizeof(_Iovec)
_U32 = struct.Struct("=I")
_PTR = struct.Struct("=Q" if ctypes.sizeof(ctypes.c_void_p) == 8 else "=I")
_SIZE_T = struct.Struct("=Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "=I")
_FAMILY = struct.Struct("=H")
_PORT = struct.Struct("!H")
_IN6_TAIL = struct.Struct("!I16sI")  # flowinfo, address, scope id (scope id in host order below)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    # No argtypes: every argument is passed as a Python int (fd, count, flags: C ints), None
    # (NULL) or a ctypes object (its address), which costs about half of a converted call.
    recv.restype = send.restype = ctypes.c_int
    return recv, send


_CALLS = _libc()


def available() -> bool:
    return _CALLS is not None


class Batch:
    """Preallocated buffers for ``size`` datagrams on one socket. An answer is written over its
    own query, in the slot the query arrived in (the query's bytes are no longer needed once
    read), so one buffer serves both directions and a cached answer's ID is already in place."""

    def __init__(self, sock: socket.socket, size: int):
        assert _CALLS is not None
        self._recvmmsg, self._sendmmsg = _CALLS
        self.fd = sock.fileno()
        self.size = size
        # An anonymous mapping: pages are only backed once written (a datagram's first page or
        # two per slot), where a zero-filled ctypes buffer would be resident at once (4 MiB).
        # Slicing the mmap itself makes bytes in one step (a memoryview slice takes two).
        self._buf = mmap.mmap(-1, size * MAX_DATAGRAM)
        self._slots = (ctypes.c_char * (size * MAX_DATAGRAM)).from_buffer(self._buf)
        self._names = ctypes.create_string_buffer(size * _NAME_SIZE)
        self._in_iov = (_Iovec * size)()
        self._out_iov = (_Iovec * size)()
        self._in_hdrs = (_Mmsghdr * size)()
        self._out_hdrs = (_Mmsghdr * size)()
        names = ctypes.addressof(self._names)
        self._name_ptrs = [names + i * _NAME_SIZE for i in range(size)]
        self._slot_ptrs = [ctypes.addressof(self._slots) + i * MAX_DATAGRAM for i in range(size)]
        # Every sender on one socket has an address of the socket's family, hence its length.
        peer_size = 28 if sock.family == socket.AF_INET6 else 16
        for i in range(size):
            self._in_iov[i].iov_base = self._out_iov[i].iov_base = self._slot_ptrs[i]
            self._in_iov[i].iov_len = MAX_DATAGRAM
            for hdrs, iov, name_size in ((self._in_hdrs, self._in_iov, _NAME_SIZE),
                                         (self._out_hdrs, self._out_iov, peer_size)):
                hdr = hdrs[i].msg_hdr
                hdr.msg_name = self._name_ptrs[i]
                hdr.msg_namelen = name_size
                hdr.msg_iov = ctypes.pointer(iov[i])
                hdr.msg_iovlen = 1
        # The kernel overwrites msg_namelen, msg_flags and msg_len: restored from this copy.
        self._template = memoryview(bytes(self._in_hdrs))
        self._touched = size  # headers the last receive may have changed
        self._in_hdr_view = memoryview(self._in_hdrs).cast("B")
        self._out_hdr_view = memoryview(self._out_hdrs).cast("B")
        self._out_iov_view = memoryview(self._out_iov).cast("B")
        self._out_hdrs_at = ctypes.addressof(self._out_hdrs)
        self._queued = 0
        # Out message j goes to slot pointed[j]'s sender from slot pointed[j]'s buffer; when
        # every datagram of a batch is answered, j == i and neither pointer is ever rewritten.
        self._pointed = list(range(size))
        self._iov_len_at = [j * ctypes.sizeof(_Iovec) + _IOV_LEN_AT for j in range(size)]
        self._iov_base_at = [j * ctypes.sizeof(_Iovec) for j in range(size)]
        self._name_at = [j * _HDR + _NAME_AT for j in range(size)]
        self._starts = [i * MAX_DATAGRAM for i in range(size)]
        self._length_structs: dict[int, struct.Struct] = {}

    def receive(self) -> int:
        """Datagrams read now (0 when none is waiting); raises OSError for other errors.
        Answers still queued are dropped: ``flush`` first."""
        self._queued = 0
        touched = self._touched * _HDR
        self._in_hdr_view[:touched] = self._template[:touched]
        n = self._recvmmsg(self.fd, self._in_hdrs, self.size, _MSG_DONTWAIT, None)
        self._touched = n if n > 0 else self.size  # a failed call: restore them all next time
        if n < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            raise OSError(code, errno.errorcode.get(code, "recvmmsg failed"))
        return n

    def data(self, i: int) -> bytes | None:
        """Slot ``i``'s datagram (None if it was cut, which MAX_DATAGRAM never allows)."""
        at = i * _HDR
        if _U32.unpack_from(self._in_hdr_view, at + _FLAGS_AT)[0] & _MSG_TRUNC:
            return None
        length = _U32.unpack_from(self._in_hdr_view, at + _LEN_AT)[0]
        start = i * MAX_DATAGRAM
        return self._buf[start:start + length]

    def peer(self, i: int):
        """Slot ``i``'s sender as ``socket.recvfrom`` gives it: (host, port) or, for IPv6,
        (host, port, flowinfo, scope_id)."""
        name = self._names.raw[i * _NAME_SIZE:(i + 1) * _NAME_SIZE]
        family = _FAMILY.unpack_from(name)[0]
        port = _PORT.unpack_from(name, 2)[0]
        if family == socket.AF_INET6:
            flowinfo, address, _ = _IN6_TAIL.unpack_from(name, 4)
            scope = _U32.unpack_from(name, 24)[0]
            return socket.inet_ntop(socket.AF_INET6, address), port, flowinfo, scope
        return socket.inet_ntop(socket.AF_INET, name[4:8]), port

    def reply(self, i: int, response: bytes) -> None:
        """Queue ``response`` to slot ``i``'s sender (sent by ``flush``), written over slot
        ``i``'s query: read it (``data``) first."""
        j = self._queued
        if j >= self.size or len(response) > MAX_DATAGRAM:
            return
        start = i * MAX_DATAGRAM
        self._buf[start:start + len(response)] = response
        _SIZE_T.pack_into(self._out_iov_view, self._iov_len_at[j], len(response))
        self._point(j, i)
        self._queued = j + 1

    def _point(self, j: int, i: int) -> None:
        """Out message ``j`` carries slot ``i``'s buffer to slot ``i``'s sender."""
        if self._pointed[j] != i:
            _PTR.pack_into(self._out_hdr_view, self._name_at[j], self._name_ptrs[i])
            _PTR.pack_into(self._out_iov_view, self._iov_base_at[j], self._slot_ptrs[i])
            self._pointed[j] = i

    def answer_repeats(self, count: int, responses: dict, now: float | None,
                       rcodes: list[int]) -> list[int]:
        """Queue, for each of the first ``count`` slots whose datagram's bytes after its first
        two (a DNS query's ID) are a key of ``responses``, that ID followed by the value, and
        count it in ``rcodes`` by the RCODE it carries; returns the other slots. With ``now``
        given, values are ``(expiry, response)`` pairs that hold while ``expiry > now``.
        Called right after ``receive``. The loop of ``data`` and ``reply`` in one, for the
        servers' hottest path: every length read by one unpack, offsets precomputed, the ID
        left where the query put it, pointers written only when they move."""
        buf, out_iov, out_hdrs = self._buf, self._out_iov_view, self._out_hdr_view
        pointed, names, slots = self._pointed, self._name_ptrs, self._slot_ptrs
        pack_len, pack_ptr = _SIZE_T.pack_into, _PTR.pack_into
        get, iov_len_at, starts = responses.get, self._iov_len_at, self._starts
        lengths = self._lengths(count).unpack_from(self._in_hdr_view)
        others = []
        j = self._queued
        for i in range(count):
            start = starts[i]
            cached = get(buf[start + 2:start + lengths[i]])
            if cached is None:
                others.append(i)
                continue
            if now is not None:
                if cached[0] <= now:
                    others.append(i)
                    continue
                cached = cached[1]
            size = len(cached)
            # A UDP response never approaches MAX_DATAGRAM (the renderers cap it at the
            # client's size, ≤ 65535 - 2 for the ID), so it fits the slot.
            buf[start + 2:start + 2 + size] = cached
            rcodes[cached[1] & 15] += 1  # octet 3 of the response: its RCODE in the low bits
            pack_len(out_iov, iov_len_at[j], size + 2)
            if pointed[j] != i:
                pack_ptr(out_hdrs, j * _HDR + _NAME_AT, names[i])
                pack_ptr(out_iov, j * _IOVEC, slots[i])
                pointed[j] = i
            j += 1
        self._queued = j
        return others

    def _lengths(self, count: int) -> struct.Struct:
        """Reads msg_len of the first ``count`` headers at once."""
        found = self._length_structs.get(count)
        if found is None:
            pad = f"{_LEN_AT}x", f"{_HDR - _LEN_AT - 4}x"
            found = self._length_structs[count] = struct.Struct("=" + f"{pad[0]}I{pad[1]}" * count)
        return found

    def flush(self) -> int:
        """Send what ``reply`` queued; returns how many were sent. A datagram the kernel
        refuses (unreachable client) is skipped; once sending would block, the rest are dropped."""
        count, start, sent = self._queued, 0, 0
        self._queued = 0
        while start < count:
            at = self._out_hdrs if start == 0 else ctypes.c_void_p(self._out_hdrs_at + start * _HDR)
            n = self._sendmmsg(self.fd, at, count - start,
                               _MSG_DONTWAIT)
            if n < 0:
                if ctypes.get_errno() in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                start += 1  # this one failed: go on with the next
                continue
            if n == 0:
                break
            start += n
            sent += n
        return sent
