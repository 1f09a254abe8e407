"""Modbus register maps: meter profiles, decoding from register words, read planning. Pure."""
