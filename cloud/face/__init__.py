"""Face enrollment in the cloud: the same detection and embedding code as the door."""
