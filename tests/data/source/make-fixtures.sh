#!/bin/sh
# Builds the fixtures of tests/unit/test_source.c under directory $1:
#   dir/        a plain directory: nested files, a dot-directory, a dotfile,
#               symlinks to a file and to a directory, a FIFO, a 50 MiB file
#   work/       a git work tree (branch main checked out) with history:
#                 c1  a.yaml=one, sub/b.yaml, .hidden/h.yaml, file.yaml   tag v1 (lightweight)
#                 c2  a.yaml=two, sub/deep/c.yaml, link.yaml -> a.yaml,
#                     linkdir -> sub, run.sh (executable)                 tag v2 (annotated)
#                 c3  feature.yaml                                        branch feature
#                 c4  a.yaml=four                                         main, HEAD
#               plus tag treetag pointing at a tree
#   origin.git  a bare clone of work
# The caller sets HOME and GIT_CONFIG_NOSYSTEM so no user configuration applies.
set -eu
T=$1
g() { git -c user.name=ibsync-test -c user.email=test@ibsync.invalid -c init.defaultBranch=main "$@"; }

mkdir -p "$T/dir/sub/deep" "$T/dir/.hidden" "$T/dir/Upper"
printf 'a: 1\n' > "$T/dir/a.yaml"
printf 'b: 2\n' > "$T/dir/sub/b.yaml"
printf 'c: 3\n' > "$T/dir/sub/deep/c.yaml"
printf 'h: 4\n' > "$T/dir/.hidden/h.yaml"
printf 'k: 5\n' > "$T/dir/.keep.yaml"
printf 'u: 6\n' > "$T/dir/Upper/u.yaml"
printf 'z: 7\n' > "$T/dir/_z.yaml"
ln -s a.yaml "$T/dir/link.yaml"
ln -s sub "$T/dir/linkdir"
mkfifo "$T/dir/fifo"
truncate -s 52428800 "$T/dir/big.yaml"

W=$T/work
g init -q "$W"
cd "$W"
mkdir -p sub .hidden
printf 'a: one\n' > a.yaml
printf 'b: 2\n' > sub/b.yaml
printf 'h: 4\n' > .hidden/h.yaml
printf 'f: 1\n' > file.yaml
g add -A
g commit -q -m c1
g tag v1
mkdir -p sub/deep
printf 'a: two\n' > a.yaml
printf 'c: 3\n' > sub/deep/c.yaml
ln -s a.yaml link.yaml
ln -s sub linkdir
printf '#!/bin/sh\n' > run.sh
chmod +x run.sh
g add -A
g commit -q -m c2
g tag -a -m "version 2" v2
g checkout -q -b feature
printf 'feature: yes\n' > feature.yaml
g add -A
g commit -q -m c3
g checkout -q main
printf 'a: four\n' > a.yaml
g commit -q -a -m c4
g tag treetag 'HEAD^{tree}'
g clone -q --bare "$W" "$T/origin.git"
