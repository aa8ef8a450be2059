# Broken on purpose: a debugging loop that prints without end and never
# gets to serve.
import sys
while True:
    print("waiting for the network to be ready...", flush=False)
