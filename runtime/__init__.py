"""What both halves run on, fixed in one place: asyncio's wait_for on Python 3.11, and the MQTT
client's sockets. edge/ and cloud/ may import it; it imports neither."""
