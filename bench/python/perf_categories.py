"""Where a profiled process spent its samples, by kind of work: reads folded stacks
(`perf script -i X.perf.data | inferno-collapse-perf > X.folded`, e.g. of the messaging service
recorded by `alternatives-bench --perf-dir`) and counts each sample once, at the innermost frame
of its stack that one of the patterns below names (self time by category; "other" when none
does). Used for docs/benchmarks/alternatives.md.

    python3 bench/python/perf_categories.py DIR/*.folded
"""

import collections
import re
import sys

# First match wins, tried on each frame from the innermost out; the order matters where a frame
# could match two patterns.
CATEGORIES = [
    ("malloc/free", r"^(malloc|_int_malloc|_int_free|cfree|unlink_chunk|__libc_calloc|calloc|realloc|_int_realloc"
     r"|__GI___libc_malloc|__GI___libc_free|malloc_consolidate|tcache|free$|sdallocx|_rjem_)"),
    ("memcpy/memmove", r"memmove|memcpy|memset"),
    ("TLS (rustls, AES-GCM)", r"rustls|ring_core|aes_gcm|gcm_"),
    ("clock_gettime", r"clock_gettime|Timespec>::now"),
    ("futex / mutex / scheduling", r"futex|lll_lock|pthread_mutex|pthread_cond|finish_task_switch|schedule|try_to_wake_up"),
    ("kernel TCP / syscalls", r"tcp_|sock_|sendmsg|recvmsg|_copy_to_iter|_copy_from_iter|do_syscall|entry_SYSCALL|skb|ip_"
     r"|__x64_sys|epoll|irqentry|softirq|_raw_spin"),
    ("JSON parse (serde_json)", r"serde_json::|node::Borrowed|MapAccess"),
    ("Avro encode (JSON -> Avro)", r"codec::node|encode_record|codec::encode"),
    ("Avro decode -> JSON text", r"codec::decode|codec::sink|TextSink|zmij|flt2dec|float_to_decimal|str::converts::from_utf8"
     r"|codec::binary"),
    ("protobuf (prost)", r"prost::|record_batch|Payload::encode|start_encoding|encode_varint|decode_varint"),
    ("HTTP/2 (h2, hyper, tonic)", r"^h2::|^hyper|^tonic::|<h2::|<hyper|<tonic::"),
    ("librdkafka", r"^rd_|rd_kafka|rdkafka::|^rd_crc32"),
    ("tokio / futures runtime", r"tokio::|futures_util|futures_core|mio::"),
    ("tracing", r"tracing"),
    ("messaging service logic", r"tributary_messaging"),
]
PATTERNS = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
DSO = re.compile(r"^\[[^\]]*\] ")


def categorize(path):
    total = 0
    counts = collections.Counter()
    with open(path) as folded:
        for line in folded:
            stack, _, weight = line.rstrip().rpartition(" ")
            weight = int(weight)
            total += weight
            category = "other"
            for frame in reversed(stack.split(";")[1:]):  # the first is the thread's name
                frame = DSO.sub("", frame)
                hit = next((name for name, pattern in PATTERNS if pattern.search(frame)), None)
                if hit:
                    category = hit
                    break
            counts[category] += weight
    return total, counts


def main():
    for path in sys.argv[1:]:
        total, counts = categorize(path)
        print(f"{path}: self time by category (a sample goes to its innermost recognised frame)")
        for name, weight in counts.most_common():
            print(f"  {100 * weight / max(total, 1):5.1f}%  {name}")


if __name__ == "__main__":
    main()
