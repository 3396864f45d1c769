#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# podman.sh — the CDI spec and the shim against the real container engine: Debian 12's podman
# (CDI library 0.5.2) runs `--device vgpuctl.io/slice=NAME` from the spec vgpuctl writes, in
#   - a busybox-static image: the slice's env, device nodes (the GPU's by its minor, nvidiactl,
#     nvidia-uvm, nvidia-uvm-tools), its region, the shim and the driver's libraries are there;
#   - a Debian 11 (bullseye, glibc 2.31) image made with debootstrap, set up like NVIDIA's CUDA
#     images (LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64): a CUDA program
#     there, built against bullseye's glibc, runs over the fake driver that the spec injected,
#     under the shim the spec preloads, and is held to the slice's quota;
#   - a spec listing a slice name CDI refuses (made by an older vgpuctl) would make podman refuse
#     every slice: vgpuctl leaves it out, and the good slices still resolve.
# Nothing on the host changes: the test runs in a private mount namespace where /run, /dev, the
# CDI directories and the shim's directory are its own; images and the rootfs are cached in the
# build directory (the rootfs comes from the Debian archive through apt's mirror once).
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE, SHIM, SRC (source root), CACHE (a build directory).
set -uo pipefail
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: podman.sh needs root (rootful podman, mount namespaces)"; exit 77; fi
for p in podman debootstrap unshare busybox gcc; do
        command -v "$p" >/dev/null || { echo "SKIP: $p is missing (scripts/install-deps.sh --test installs it)"; exit 77; }
done
# the private mount namespace: whatever is mounted below is gone when the test ends
if [[ -z ${VGPU_PODMAN_NS:-} ]]; then
        exec unshare --mount --propagation private env VGPU_PODMAN_NS=1 bash "$0" "$@"
fi
tmp=$(mktemp -d); made_dirs=()
cleanup() {
        $P rm -af >/dev/null 2>&1
        for m in "${over[@]}"; do umount "$m" 2>/dev/null; done
        for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
        rm -rf "$tmp"
}
over=()
P=true
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
V() { VGPU_ROOT="$tmp/host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
mkdir -p "$CACHE"
cache=$(cd "$CACHE" && pwd)

# ---- bullseye: debootstrap once into the build directory, with libc6-dev to build against it
rootfs=$cache/rootfs/bullseye
if [[ ! -f $rootfs/.vgpuctl-complete ]]; then
        mirror=${VGPU_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
        echo "# debootstrap bullseye from $mirror into $rootfs (once)"
        rm -rf "$rootfs.tmp"
        if ! debootstrap --variant=minbase --include=libc6-dev bullseye "$rootfs.tmp" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
                tail -5 "$tmp/debootstrap.log"
                echo "SKIP: debootstrap of bullseye from $mirror failed (no route to the Debian archive?)"; exit 77
        fi
        rm -rf "$rootfs" && mv "$rootfs.tmp" "$rootfs" && touch "$rootfs/.vgpuctl-complete"
fi

# ---- the CUDA program and the fake driver, built against bullseye's glibc 2.31 (host gcc,
# bullseye's headers, crt files and libc): what a user's image and the host driver would hold
bull=$tmp/bullseye-bin
mkdir -p "$bull/driver" "$bull/app"
# Debian's gcc searches its own library directories before the sysroot's, and bullseye's libc.so
# script and lib64/ld-linux link point at absolute paths: its crt files (-B), a libc.so script
# of our own and the libraries themselves by path make the link bullseye's
blib=$rootfs/usr/lib/x86_64-linux-gnu
mkdir -p "$tmp/ldscript"
echo "GROUP ( $blib/libc.so.6 $blib/libc_nonshared.a AS_NEEDED ( $(echo "$blib"/ld-2.*.so) ) )" >"$tmp/ldscript/libc.so"
cflags=(--sysroot="$rootfs" -B"$blib/" -L"$tmp/ldscript" -L"$blib" -std=gnu17 -D_GNU_SOURCE -O1
        -I"$SRC/lib" -I"$SRC/lib/include" -I"$SRC/tests/shim")
fake=(fake-cuda.c fake-gpu.c fake-graph.c fake-memory.c fake-queue.c fake-resolve.c fake-vmm.c)
tenant=(tenant.c tenant-graph.c tenant-memory.c tenant-resolve.c tenant-scrub.c)
slice=("$SRC"/lib/slice/slice-charge.c "$SRC"/lib/slice/slice-region.c "$SRC"/lib/slice/slice-sched.c "$SRC"/lib/basic/error-util.c)
if ! gcc "${cflags[@]}" -shared -fPIC -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic -o "$bull/driver/libcuda.so.1" \
        "${fake[@]/#/$SRC/tests/shim/}" "$blib/libpthread.so.0" 2>"$tmp/cc.log" ||
   ! gcc "${cflags[@]}" -o "$bull/app/cuda-tenant" "${tenant[@]/#/$SRC/tests/shim/}" "${slice[@]}" "$blib/libdl.so.2" "$blib/libpthread.so.0" 2>>"$tmp/cc.log"; then
        cat "$tmp/cc.log"; bad "building the CUDA program and fake driver against bullseye's glibc"; exit 1
fi

# ---- the host: the fixture, the driver installed as Debian's nvidia-driver packages do
# (nvidia/current, known to ld.so.cache), the GPU's minor in the driver's /proc file
cp -a "$FIXTURES/nvidia-baremetal" "$tmp/host"
drv=/usr/lib/x86_64-linux-gnu/nvidia/current
mkdir -p "$tmp/host$drv" "$tmp/host/proc/driver/nvidia/gpus/0000:3b:00.0"
cp "$bull/driver/libcuda.so.1" "$tmp/host$drv/"
echo "$drv" >"$tmp/host/etc/ld.so.conf"
ldconfig -r "$tmp/host" || { bad "ldconfig -r of the fixture"; exit 1; }
printf 'Model: \t\t Tesla T4\nIRQ:   \t\t 42\nDevice Minor: \t 2\n' >"$tmp/host/proc/driver/nvidia/gpus/0000:3b:00.0/information"

# ---- a /dev of our own: the host's entries, and NVIDIA's nodes (char 195, nvidia-uvm 235)
mkdir -p "$tmp/dev"
mount -t tmpfs -o mode=755 vgpu-test-dev "$tmp/dev"
for e in /dev/* /dev/.[!.]*; do
        [[ -e $e || -L $e ]] || continue
        n=$tmp/dev/${e#/dev/}
        if [[ -L $e ]]; then cp -P "$e" "$n"
        elif [[ -d $e ]]; then mkdir -p "$n" && mount --rbind "$e" "$n"
        else touch "$n" && mount --bind "$e" "$n"; fi
done
mknod -m 666 "$tmp/dev/nvidia2" c 195 2
mknod -m 666 "$tmp/dev/nvidiactl" c 195 255
mknod -m 666 "$tmp/dev/nvidia-uvm" c 235 0
mknod -m 666 "$tmp/dev/nvidia-uvm-tools" c 235 1
mkdir -p "$tmp/host/dev" && touch "$tmp/host/dev/nvidia-uvm-tools"     # what vgpuctl sees
mount --move "$tmp/dev" /dev

# ---- the slices, as vgpuctl makes them
V slice create alice --gpu 3b:00.0 --memory 64M; [[ $rc == 0 ]] || { bad "slice create alice: $(cat "$tmp/err")"; exit 1; }
V slice create 7up --gpu 3b:00.0 --memory 32M; [[ $rc == 0 ]] || bad "slice create 7up: $(cat "$tmp/err")"
spec=$tmp/host/etc/cdi/vgpuctl.yaml
shim_path=$(sed -n 's/^ *- "LD_PRELOAD=\(.*\)"$/\1/p' "$spec" | head -1)
[[ -n $shim_path ]] || { bad "no LD_PRELOAD in the spec: $(cat "$spec")"; exit 1; }

# ---- /run of our own (podman's CDI directory /run/cdi, the regions), the shim where the spec says
mount -t tmpfs -o mode=755 vgpu-test-run /run
mkdir -p /run/cdi /run/vgpuctl
mount --bind "$tmp/host/run/vgpuctl" /run/vgpuctl
cp "$spec" /run/cdi/vgpuctl.yaml
if [[ -d /etc/cdi ]]; then mount -t tmpfs vgpu-test-etc-cdi /etc/cdi; over+=(/etc/cdi); fi    # the host's own specs stay out
shim_dir=$(dirname "$shim_path")
# a mount needs a directory: the ones made on the host here are removed again, deepest first
d=$shim_dir
while [[ ! -d $d ]]; do made_dirs+=("$d"); d=$(dirname "$d"); done
mkdir -p "$shim_dir"
mount -t tmpfs -o mode=755 vgpu-test-shim "$shim_dir"; over+=("$shim_dir")
cp "$SHIM" "$shim_path"

# ---- podman, with storage in the build directory (images imported once)
# (libpod records its run and temporary directories with the images: they stay the same paths)
rm -rf "$cache/podman-run" "$cache/podman-tmp"
P="podman --root $cache/storage --runroot $cache/podman-run --tmpdir $cache/podman-tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
bb=localhost/vgpuctl-test/busybox
if ! $P image exists $bb; then
        mkdir -p "$tmp/bb/bin" && cp "$(command -v busybox)" "$tmp/bb/bin/busybox"
        for t in sh env ls cat stat test grep; do ln -s busybox "$tmp/bb/bin/$t"; done
        tar -C "$tmp/bb" -c . | $P import - $bb >/dev/null 2>&1 || { bad "podman import of busybox"; exit 1; }
fi
cuda=localhost/vgpuctl-test/bullseye-cuda
if ! $P image exists $cuda; then
        tar -C "$rootfs" --exclude=./.vgpuctl-complete -c . |
                $P import --change 'ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64' - $cuda >/dev/null 2>&1 ||
                { bad "podman import of bullseye"; exit 1; }
fi
# How podman can run here: as installed, or (inside a container without CAP_SYS_RESOURCE, with
# cgroup v1/v2 hybrid) with limits it may set and runc, which crun refuses to run beside
run_opts=()
why=
for opts in "" "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096" "--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096"; do
        read -ra o <<<"$opts"
        if out=$($P run --rm --network none "${o[@]}" $bb sh -c : 2>&1); then run_opts=("${o[@]}"); break; fi
        why+="${opts:-as installed}: ${out##*Error: }; "
        run_opts=(none)
done
if [[ ${run_opts[*]-} == none ]]; then echo "SKIP: podman cannot run a container here ($why)"; exit 77; fi
[[ -n $why ]] && echo "# podman runs here with ${run_opts[*]} (not as installed: $why)"
R() { $P run --rm --network none "${run_opts[@]}" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }

# busybox: what --device vgpuctl.io/slice=alice injects, and nothing more needed on the command line
R --device vgpuctl.io/slice=alice $bb sh -c 'env; stat -c "node %n %t:%T" /dev/nvidia*; ls /run/vgpuctl/slices; stat -c "file %n" "$LD_PRELOAD" /usr/local/nvidia/lib64/*'
if [[ $rc == 0 ]]; then ok; else bad "podman run --device vgpuctl.io/slice=alice: rc $rc: $(cat "$tmp/err")"; fi
for want in "VGPU_SLICE=alice" "VGPU_SLICE_SHM=/run/vgpuctl/slices/alice.slice" \
            "VGPU_SLICE_SCHED=/run/vgpuctl/slices/0000:3b:00.0.shm" "LD_PRELOAD=$shim_path" \
            "node /dev/nvidia2 c3:2" "node /dev/nvidiactl c3:ff" "node /dev/nvidia-uvm eb:0" "node /dev/nvidia-uvm-tools eb:1" \
            "0000:3b:00.0.shm" "alice.slice" "file $shim_path" "file /usr/local/nvidia/lib64/libcuda.so.1"; do
        grep -qxF -- "$want" "$tmp/out" && ok || bad "alice's container lacks '$want': $(cat "$tmp/out")"
done
# alice's container has her region and the scheduler, not 7up's region (issue 10.1)
grep -qxF "7up.slice" "$tmp/out" && bad "alice's container has 7up's region: $(cat "$tmp/out")" || ok
R --device vgpuctl.io/slice=7up $bb sh -c 'echo $VGPU_SLICE'
[[ $rc == 0 && $(cat "$tmp/out") == 7up ]] && ok || bad "a name starting with a digit (spec 0.5.0): rc $rc: $(cat "$tmp/err" "$tmp/out")"

# bullseye: a CUDA program over the injected driver, under the injected shim, held to 64 MiB
R --device vgpuctl.io/slice=alice -e FAKE_CUDA_BUSIDS=0000:3b:00.0 -v "$bull/app:/opt/app:ro" $cuda /opt/app/cuda-tenant fill 1048576
[[ $rc == 0 && $(cat "$tmp/out") == "count=64 rc=2" ]] && ok ||
        bad "the CUDA program in bullseye under alice: rc $rc, '$(cat "$tmp/out")' (expected count=64 rc=2): $(head -c 600 "$tmp/err")"
# the same program without the slice is not held: the quota above is the shim's doing
R -e FAKE_CUDA_BUSIDS=0000:3b:00.0 -e LD_LIBRARY_PATH=/opt/driver -v "$bull/app:/opt/app:ro" -v "$bull/driver:/opt/driver:ro" $cuda \
        /opt/app/cuda-tenant fill 1048576
[[ $rc == 0 && $(cat "$tmp/out") != "count=64 rc=2" ]] && ok || bad "without the slice: rc $rc, '$(cat "$tmp/out")' $(head -c 300 "$tmp/err")"

# a slice with a name CDI refuses (as an older vgpuctl made them) poisons no spec
region=$tmp/host/run/vgpuctl/slices/0000:3b:00.0.shm
python3 -c "
d = bytearray(open('$region', 'rb').read()); i = d.find(b'7up\0')
assert i >= 0; d[i:i + 4] = b'7u-\0'; open('$region', 'r+b').write(d)"
V slice create bob --gpu 3b:00.0 --memory 32M; [[ $rc == 0 ]] && ok || bad "slice create bob: $(cat "$tmp/err")"
cp "$spec" /run/cdi/vgpuctl.yaml
R --device vgpuctl.io/slice=bob $bb sh -c 'echo $VGPU_SLICE'
[[ $rc == 0 && $(cat "$tmp/out") == bob ]] && ok || bad "bob next to a bad old name: rc $rc: $(cat "$tmp/err")"
echo "podman: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
