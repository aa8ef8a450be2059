# Broken on purpose: allocates without end before it ever listens. The
# sandbox's memory limit stops it, and that is what the report must say.
hoard = []
while True:
    hoard.append(bytearray(16 * 1024 * 1024))
