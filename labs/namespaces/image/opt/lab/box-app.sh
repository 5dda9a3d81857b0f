#!/bin/sh
# The namespaces lab's app: runs as PID 1 of the nested container (root in its own user
# namespace), leaves something behind in each namespace kind, then becomes the web server.
set -u

# Mount namespace: a tmpfs over /mnt/inside. From the host the folder keeps its image
# content (a note saying so); inside, the tmpfs hides it.
mount -t tmpfs -o size=1m,mode=0755 inside /mnt/inside
echo 'Written inside the container, on a tmpfs only its mount namespace has.' > /mnt/inside/hello.txt

# IPC namespace: a System V shared-memory segment (ipcs -m lists it inside, not outside),
# and a POSIX one: a file in the container's own /dev/shm.
ipcmk --shmem 4096 > /dev/null
echo 'POSIX shared memory of the container' > /dev/shm/box-note

exec busybox httpd -f -p 8080 -h /srv/www
