"""A real BitTorrent client (libtorrent) for the reference peers' tests.

make FILE TORRENT PIECE_LENGTH   writes a v1 .torrent for FILE, prints its info_hash
get TORRENT DIR PORT...          downloads into DIR from 127.0.0.1:PORT..., prints
                                 the hash failures seen; exits 1 after 60 s. The
                                 first port is tried alone until a hash fails or
                                 3 s pass, then the others join
track TORRENT DIR                downloads into DIR from the peers the torrent's
                                 tracker names (HTTP or UDP), no peer given;
                                 prints the tracker's alerts; exits 1 after 60 s
"""
import os
import sys
import time

import libtorrent as lt


def make(path, out, piece_length):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    t = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(t, os.path.dirname(path))
    with open(out, "wb") as f:
        f.write(lt.bencode(t.generate()))
    print(lt.torrent_info(out).info_hashes().v1)


def get(torrent, save, ports):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.all_categories,
    })
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    h.connect_peer(("127.0.0.1", ports[0]))
    others = ports[1:]
    failed = 0
    start = time.time()
    deadline = start + 60
    while not h.status().is_seeding:
        for a in ses.pop_alerts():
            if isinstance(a, lt.hash_failed_alert):
                failed += 1
        if others and (failed or time.time() > start + 3):
            for p in others:
                h.connect_peer(("127.0.0.1", p))
            others = []
        if time.time() > deadline:
            print("timeout; progress", h.status().progress, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
    print("hash_failed", failed)


def track(torrent, save):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        # Every peer here is 127.0.0.1.
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.tracker_notification
        | lt.alert.category_t.error_notification,
    })
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    deadline = time.time() + 60
    while not h.status().is_seeding:
        for a in ses.pop_alerts():
            print(type(a).__name__, a.message(), flush=True)
        if time.time() > deadline:
            print("timeout; progress", h.status().progress, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
    print("complete", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "track":
        track(sys.argv[2], sys.argv[3])
    else:
        get(sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]])
