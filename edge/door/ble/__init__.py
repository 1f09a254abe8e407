"""BLE locks: the bleak driver, and the bumble lock emulator with the bleak backend it rides."""
