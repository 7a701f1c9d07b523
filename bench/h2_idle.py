# What an idle HTTP/2 connection costs a server: N h2c connections (prior knowledge) to PORT,
# each after one GET /hello, then held quiet; the RSS of PID before, right after, and 2.5 s later
# (past the server's tick: an idle connection's trimming). Python's h2 (Debian's python3-h2).
#   /usr/bin/python3 bench/h2_idle.py PORT N PID
import socket, sys, time
import h2.connection, h2.config, h2.events
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1])
base = rss()
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.send_headers(1, [(":method", "GET"), (":path", "/hello"), (":scheme", "http"), (":authority", "x")], end_stream=True)
    s.sendall(c.data_to_send())
    done = False
    while not done:
        data = s.recv(65536)
        if not data: break
        for e in c.receive_data(data):
            if isinstance(e, h2.events.StreamEnded): done = True
        s.sendall(c.data_to_send())
    conns.append((s, c))
time.sleep(0.1)
after = rss()
time.sleep(2.5)
later = rss()
print(f"base {base} KiB; {n} conns: right after {after} KiB ({(after-base)/n:.1f} KiB each), 2.5 s later {later} KiB ({(later-base)/n:.1f} KiB each)")
