"""A small zone exercising what signers get wrong: a delegation with DS, glue (also below the
cut), an insecure delegation, a wildcard, and CAPS/LOAD in friendly and RFC 3597 form."""

import dns.name

ORIGIN = dns.name.from_text("example.com.")
ZONE = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 2026112501 7200 3600 1209600 300
@ NS ns1
@ NS ns.child
ns1 A 192.0.2.1
www A 192.0.2.10
www AAAA 2001:db8::10
pool-7 CAPS gpu_count=8 gpu_vendor=nvidia
pool-7 30 LOAD gpu_free=3
pool-8 TYPE65380 \\# 10 81a467707573a3613130
pool-8 30 TYPE65381 \\# 1 80
pool-7 SVCB 1 . alpn=h2 port=8443
child NS ns.child
child DS 12345 15 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
child A 192.0.2.99
ns.child A 192.0.2.53
deep.ns.child AAAA 2001:db8::53
insecure NS ns1
*.wild TXT "wildcard"
Upper.Case A 192.0.2.7
alias DNAME example.net.
below.alias A 192.0.2.8
"""
