"""Pure protocol code shared by edge and cloud: bytes and dicts in, typed values out.

No sockets, no clocks, no database; it imports neither `edge` nor `cloud`.
"""
