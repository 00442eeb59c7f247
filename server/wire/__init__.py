"""What both transports speak: the input shapes requests and socket URLs
are parsed by (schema.py) and the JSON error body (errors.py). Beside
server.http and server.realtime, so neither imports the other for them."""
