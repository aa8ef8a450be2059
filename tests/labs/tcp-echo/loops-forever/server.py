# Broken on purpose: spins before ever listening.
import sys
n = 0
while True:
    n += 1
