# Broken on purpose: forks without end before it ever listens. The
# sandbox's process limit stops it; no process of it may outlive grading.
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
