# Profile images, sourced by bench/run.sh and run with its settings and
# helpers: SetProfileImage on SQLite with a file store, beside vipsthumbnail
# (libvips) making the same 512 square from the same 2-megapixel JPEG with
# every core busy; then the peak resident memory of a freshly started service
# while 16 uploads of a JPEG just under the 5 MiB limit are in flight.

# About 2 megapixels, 3:2, as a phone photo scaled for the web.
PHOTO_WIDTH=1732
PHOTO_HEIGHT=1155
# 12 megapixels: at this quality and noise the JPEG comes out just under
# PROFILE_IMAGE_MAX_BYTES (checked below).
LARGE_WIDTH=4000
LARGE_HEIGHT=3000
LARGE_QUALITY=90
LARGE_NOISE=12
LARGE_LIMIT=5242880
IMAGE_MEMORY_UPLOADS=16

# vipsthumbnail processes, one per core, each making images one after
# another for $DURATION seconds with one thread (VIPS_CONCURRENCY=1), so that
# as many images are in flight as the service processes at once by default
# (IMAGE_CONCURRENCY = cores). The flags make what the service stores: the
# centred square (`--smartcrop centre`), 512 a side, JPEG quality 85,
# metadata stripped. Each process is handed BATCH copies of the file, under
# names of their own and with libvips' operation cache off, so that nothing
# is reused from one image to the next: with 1, each image also pays for
# starting a process (about 40 ms of CPU here); with 8 that is mostly spread.
vips_rate() { # INPUT BATCH NAME
    local input=$1 batch=$2 name=$3 dir=$WORK/$3 i j pids=() inputs=()
    mkdir -p "$dir"
    for j in $(seq 1 "$batch"); do
        cp "$input" "$dir/in-$j.jpg"
        inputs+=("$dir/in-$j.jpg")
    done
    local started deadline
    started=$(date +%s%N)
    deadline=$((started + DURATION * 1000000000))
    for i in $(seq 1 "$CORES"); do
        (
            n=0
            while [ "$(date +%s%N)" -lt "$deadline" ]; do
                VIPS_CONCURRENCY=1 vipsthumbnail --vips-cache-max=0 "${inputs[@]}" --size 512x512 \
                    --smartcrop centre -o "$dir/out-$i-%s.jpg[Q=85,strip]"
                n=$((n + batch))
            done
            echo "$n" >"$dir/count-$i"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    local finished
    finished=$(date +%s%N)
    python3 -c 'import json,sys; d=sys.argv[1]; p=int(sys.argv[2]); n=sum(int(open("%s/count-%d" % (d, i)).read()) for i in range(1, p + 1)); s=(int(sys.argv[4]) - int(sys.argv[3])) / 1e9; print(json.dumps({"scenario": "vipsthumbnail", "version": sys.argv[5], "processes": p, "images_per_process": int(sys.argv[6]), "images": n, "duration_s": s, "per_second": n / s, "output": sys.argv[7], "output_bytes": int(sys.argv[8])}))' \
        "$dir" "$CORES" "$started" "$finished" "$(vips --version)" "$batch" \
        "$(vipsheader "$dir/out-1-in-1.jpg" | sed 's/^[^:]*: //')" "$(stat -c %s "$dir/out-1-in-1.jpg")" \
        | tee "$RESULTS/$name.json"
}

images_bench() {
    step "profile images: a ${PHOTO_WIDTH}x${PHOTO_HEIGHT} photo-like JPEG; vipsthumbnail makes its 512 square on $CORES cores"
    if ! command -v vipsthumbnail >/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null
    fi
    local photo=$WORK/photo-2mp.jpg large=$WORK/photo-large.jpg
    "$LG" make-jpeg --width "$PHOTO_WIDTH" --height "$PHOTO_HEIGHT" --out "$photo"
    vips_rate "$photo" 8 images_vips
    vips_rate "$photo" 1 images_vips_single

    step "profile images, SQLite: SetProfileImage of the same JPEG at $((2 * CORES)) in flight"
    start_service "sqlite://$WORK/images.sqlite" MEDIA_STORE="file://$WORK/media"
    load upload_sqlite upload --file "$photo" --concurrency $((2 * CORES))
    stop_service

    step "profile images: peak resident memory of a fresh service during $IMAGE_MEMORY_UPLOADS concurrent uploads of a ${LARGE_WIDTH}x${LARGE_HEIGHT} JPEG"
    "$LG" make-jpeg --width "$LARGE_WIDTH" --height "$LARGE_HEIGHT" --quality "$LARGE_QUALITY" \
        --noise "$LARGE_NOISE" --out "$large"
    local large_bytes
    large_bytes=$(stat -c %s "$large")
    if [ "$large_bytes" -gt "$LARGE_LIMIT" ]; then
        echo "the large JPEG has $large_bytes bytes, over the $LARGE_LIMIT the service accepts" >&2
        exit 1
    fi
    start_service "sqlite://$WORK/images-memory.sqlite" MEDIA_STORE="file://$WORK/media-memory"
    sleep 1
    local idle_kib
    idle_kib=$(proc_kib VmRSS)
    "$LG" upload --addr "http://$GRPC" --file "$large" --concurrency "$IMAGE_MEMORY_UPLOADS" \
        --requests "$IMAGE_MEMORY_UPLOADS" --duration 300 --json >"$RESULTS/upload_memory.json"
    local peak_kib after_kib
    peak_kib=$(proc_kib VmHWM)
    after_kib=$(proc_kib VmRSS)
    stop_service
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"file_bytes": int(sys.argv[2]), "width": int(sys.argv[3]), "height": int(sys.argv[4]), "quality": int(sys.argv[5]), "noise": int(sys.argv[6]), "uploads": int(sys.argv[7]), "idle_kib": int(sys.argv[8]), "peak_kib": int(sys.argv[9]), "after_kib": int(sys.argv[10]), "duration_s": r["duration_s"], "latency_ms": r["latency_ms"], "codes": r["codes"]}))' \
        "$RESULTS/upload_memory.json" "$large_bytes" "$LARGE_WIDTH" "$LARGE_HEIGHT" "$LARGE_QUALITY" "$LARGE_NOISE" \
        "$IMAGE_MEMORY_UPLOADS" "$idle_kib" "$peak_kib" "$after_kib" | tee "$RESULTS/images_memory.json"
}
