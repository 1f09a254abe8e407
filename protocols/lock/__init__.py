"""The Anju BLE lock protocol: GATT layout, authenticated frames and their messages (no I/O)."""
