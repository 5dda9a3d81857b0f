#!/bin/sh
# The app of this tiny image: it reports the setting it finds.
echo "the app runs with $(cat "$(dirname "$0")/config.txt")"
