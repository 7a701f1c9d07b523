# A TCP service for the gateway's L4 front (protocol: tcp): greets each connection with its
# instance's name, echoes what it reads, and after the client's half-close says "bye" and
# closes (so a test sees that a half-close passed through both ways).
import os
import socket
import threading

me = os.environ.get("SQUADRON_INSTANCE", "?")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(os.environ["PORT"])))
server.listen(128)


def serve(conn):
    with conn:
        conn.sendall(f"hi {me}\n".encode())
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.sendall(b"bye\n")


while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
