#!/usr/bin/env python3
"""HTTP/2 (h2c prior knowledge) client for PageShare's stream tests, on python3-h2: the frame-level things
curl cannot do. Prints one JSON object.

  h2_client.py PORT window PATH STREAMS   # a small window, a pause without reading, then every body
  h2_client.py PORT cancel PATH SMALL     # RST_STREAM a download; the connection goes on
  h2_client.py PORT post TARGET BYTES     # a request body larger than the connection's initial window
  h2_client.py PORT goaway PATH           # a download held by its window while the server shuts down
  h2_client.py PORT malformed PATH        # a malformed request beside a download on one connection
  h2_client.py PORT rapidreset PATH       # streams opened and reset at once, 400 times (CVE-2023-44487)
  h2_client.py PORT stalled PATH STREAMS  # zero windows: what the server holds, then every body once opened
  h2_client.py PORT sendtimeout PATH      # a zero-window stream kept alive by PINGs: when the server cuts it
  h2_client.py PORT stalledstream PATH    # one stream's window kept shut beside one read slowly
  h2_client.py PORT longlived PATH SECS   # one connection, a request every half second
  h2_client.py PORT bigheaders PATH       # a request whose header list is over the limit beside a download
  h2_client.py PORT continuation PATH     # a header block split over 20 CONTINUATION frames
"""
import hashlib
import json
import re
import socket
import sys
import time
import urllib.request

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings


def metrics(port):
    """The /metrics counters this script reports, read over HTTP/1.1 on a connection of its own."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for name in ("pageshare_cache_logical_read_bytes", "pageshare_http_open_streams", "pageshare_http_unsent_bytes",
                 "pageshare_http_send_timeouts_total"):
        match = re.search(r"^" + name + r"(?:\{[^}]*\})? (\S+)$", text, re.M)
        out[name] = float(match.group(1)) if match else None
    return out


class DrainingConnection(h2.connection.H2Connection):
    """h2 4.1 closes its state machine on a GOAWAY; a server shutting down gracefully goes on answering the
    streams the GOAWAY names, so this one notes the GOAWAY and keeps reading them."""

    goaway_last_stream = None

    def _receive_goaway_frame(self, frame):
        self.goaway_last_stream = frame.last_stream_id
        self.goaways = getattr(self, "goaways", []) + [frame.last_stream_id]
        return [], []


class Client:
    def __init__(self, port, window=None, validate=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = DrainingConnection(
            h2.config.H2Configuration(client_side=True, validate_outbound_headers=validate,
                                      normalize_outbound_headers=validate))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}  # id -> {"status", "body", "ended", "reset"}
        self.unacknowledged = {}  # stream id -> flow-controlled bytes received and not yet given back
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", end_stream=True, extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "127.0.0.1")]
        self.conn.send_headers(sid, headers + list(extra), end_stream=end_stream)
        self.flush()
        self.streams[sid] = {"status": None, "body": bytearray(), "ended": False, "reset": None}
        return sid

    def read_until_closed(self, seconds):
        """Reads (frames go to the connection: a GOAWAY is noted) until the server closes, for up to
        `seconds`; returns the bytes read."""
        deadline = time.monotonic() + seconds
        received = 0
        while not self.closed and time.monotonic() < deadline:
            try:
                self.sock.settimeout(0.2)
                data = self.sock.recv(65536)
                received += len(data)
                if not data:
                    self.closed = True
                else:
                    self.conn.receive_data(data)
                    self.flush()  # acknowledgements (PING, SETTINGS) the frames asked for
            except socket.timeout:
                continue
            except (OSError, h2.exceptions.ProtocolError):
                self.closed = True
        return received

    def acknowledge(self):
        """Gives every byte received so far back to the windows (the connection's, and open streams')."""
        for sid, count in self.unacknowledged.items():
            if count:
                self.conn.acknowledge_received_data(count, sid)
        self.unacknowledged = {}
        self.flush()

    def pump(self, acknowledge, timeout):
        """Reads frames for up to `timeout` seconds (less once every stream ended); returns the events."""
        deadline = time.monotonic() + timeout
        events = []
        while time.monotonic() < deadline and not all(s["ended"] or s["reset"] for s in self.streams.values()):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                self.closed = True
                break
            for event in self.conn.receive_data(data):
                events.append(event)
                stream = self.streams.get(getattr(event, "stream_id", None))
                if isinstance(event, h2.events.ResponseReceived):
                    stream["status"] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    stream["body"] += event.data
                    self.unacknowledged[event.stream_id] = (
                        self.unacknowledged.get(event.stream_id, 0) + event.flow_controlled_length)
                    if acknowledge:
                        self.acknowledge()
                elif isinstance(event, h2.events.StreamEnded):
                    stream["ended"] = True
                elif isinstance(event, h2.events.StreamReset) and stream is not None:
                    stream["reset"] = int(event.error_code)

            self.flush()
        return events


def window(port, path, count):
    client = Client(port, window=16384)
    ids = [client.request(path) for _ in range(count)]
    client.pump(acknowledge=False, timeout=1.0)
    stalled = sum(len(client.streams[i]["body"]) for i in ids)
    during = metrics(port)
    client.acknowledge()
    client.pump(acknowledge=True, timeout=60)
    return {
        "received_while_stalled": stalled,
        "read_while_stalled": during["pageshare_cache_logical_read_bytes"],
        "bodies": [
            {"status": client.streams[i]["status"], "ended": client.streams[i]["ended"],
             "length": len(client.streams[i]["body"]), "sha256": hashlib.sha256(client.streams[i]["body"]).hexdigest()}
            for i in ids
        ],
    }


def cancel(port, path, small):
    client = Client(port)
    big = client.request(path)
    # Read (without giving window back) until some body arrived, then cancel.
    deadline = time.monotonic() + 10
    while len(client.streams[big]["body"]) < 16384 and time.monotonic() < deadline:
        client.pump(acknowledge=False, timeout=0.2)
    received = len(client.streams[big]["body"])
    client.conn.reset_stream(big, error_code=h2.errors.ErrorCodes.CANCEL)
    client.acknowledge()  # the reset stream's bytes still count against the connection window
    del client.streams[big]
    time.sleep(0.2)
    after_reset = metrics(port)
    time.sleep(0.3)
    later = metrics(port)
    second = client.request(small)
    client.pump(acknowledge=True, timeout=10)
    answer = client.streams[second]
    return {
        "received_before_reset": received,
        "read_after_reset": after_reset["pageshare_cache_logical_read_bytes"],
        "read_later": later["pageshare_cache_logical_read_bytes"],
        "open_streams_after_reset": after_reset["pageshare_http_open_streams"],
        "second": {"status": answer["status"], "ended": answer["ended"],
                   "sha256": hashlib.sha256(answer["body"]).hexdigest()},
    }


def post(port, target, size):
    client = Client(port)
    sid = client.request(target, method="POST", end_stream=False, extra=[("content-type", "application/json")])
    body = b"[" + b" " * (size - 2) + b"]"
    sent = 0
    deadline = time.monotonic() + 20
    while sent < len(body) and time.monotonic() < deadline:
        window = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
        if window <= 0:
            client.pump(acknowledge=True, timeout=0.2)  # WINDOW_UPDATEs arrive here
            continue
        piece = body[sent:sent + window]
        sent += len(piece)
        client.conn.send_data(sid, piece, end_stream=sent == len(body))
        client.flush()
    client.pump(acknowledge=True, timeout=10)
    stream = client.streams[sid]
    return {"sent": sent, "status": stream["status"], "ended": stream["ended"], "body": stream["body"].decode()}


def goaway(port, path):
    client = Client(port, window=16384)
    sid = client.request(path)
    # The test shuts the server down meanwhile; the download is held by its window until the GOAWAY comes
    # (however late a loaded test run makes it).
    deadline = time.monotonic() + 20
    while client.conn.goaway_last_stream is None and not client.closed and time.monotonic() < deadline:
        client.pump(acknowledge=False, timeout=0.5)
    client.acknowledge()
    client.pump(acknowledge=True, timeout=30)
    stream = client.streams[sid]
    # A new stream after the GOAWAY: the server must not answer it.
    try:
        late = client.request(path)
        client.pump(acknowledge=True, timeout=2)
        late_status = client.streams[late]["status"]
    except Exception:
        late_status = None
    # The server closes once its GOAWAY is written; wait for that, but less than its 10 s grace period (after
    # which it would close anyway).
    # (pump returns at once when every stream has ended or was reset, as a refused late stream is: read.)
    client.read_until_closed(7)
    return {
        "goaway_last_stream": client.conn.goaway_last_stream, "status": stream["status"], "ended": stream["ended"],
        "goaways": getattr(client.conn, "goaways", []),
        "sha256": hashlib.sha256(stream["body"]).hexdigest(), "late_status": late_status,
        "closed": client.closed,
    }


def malformed(port, path):
    client = Client(port, window=16384, validate=False)
    good = client.request(path)
    client.pump(acknowledge=False, timeout=0.3)
    # A connection-specific field is a malformed request (RFC 9113 8.2.2): a stream error, not a
    # connection error.
    bad = client.request(path, extra=[("connection", "keep-alive")])
    client.pump(acknowledge=False, timeout=0.5)
    client.acknowledge()
    client.pump(acknowledge=True, timeout=30)
    return {
        "bad_reset": client.streams[bad]["reset"], "bad_status": client.streams[bad]["status"],
        "good_status": client.streams[good]["status"], "good_ended": client.streams[good]["ended"],
        "good_sha256": hashlib.sha256(client.streams[good]["body"]).hexdigest(), "closed": client.closed,
    }


def rapidreset(port, path):
    client = Client(port)
    sent = 0
    try:
        for _ in range(400):
            sid = client.request(path)
            client.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            client.flush()
            sent += 1
    except (OSError, h2.exceptions.ProtocolError):
        pass  # the server closed the connection
    received = client.read_until_closed(5)
    return {"sent": sent, "goaway_last_stream": client.conn.goaway_last_stream, "closed": client.closed,
            "received": received}


def overlimit(port, path, count):
    """Opens `count` streams at once with a zero window (none can finish): those past the server's limit must
    be refused one by one, the others kept, the connection open."""
    client = Client(port, window=0)
    settle(client)
    advertised = client.conn.remote_settings.max_concurrent_streams
    ids = [client.request(path) for _ in range(count)]
    client.pump(acknowledge=False, timeout=1.5)
    return {
        "advertised": advertised,
        "resets": [client.streams[i]["reset"] for i in ids],
        "answered": sum(1 for i in ids if client.streams[i]["status"] == 200),
        "goaway_last_stream": client.conn.goaway_last_stream, "closed": client.closed,
    }


def settle(client):
    """Waits for the server's SETTINGS and its ACK of ours (before that it counts the protocol's defaults)."""
    deadline = time.monotonic() + 2
    acknowledged = False
    while not acknowledged and time.monotonic() < deadline:
        client.sock.settimeout(0.2)
        try:
            data = client.sock.recv(65536)
        except socket.timeout:
            continue
        for event in client.conn.receive_data(data):
            acknowledged = acknowledged or isinstance(event, h2.events.SettingsAcknowledged)
        client.flush()


def stalled(port, path, count):
    """`count` streams with zero windows: the heads arrive, the server holds at most its floor of body bytes;
    then the windows open and every body must complete, whole and right."""
    client = Client(port, window=0)
    settle(client)
    ids = [client.request(path) for _ in range(count)]
    client.pump(acknowledge=False, timeout=1.5)
    during = metrics(port)
    heads = sum(1 for i in ids if client.streams[i]["status"] is not None)
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    client.conn.increment_flow_control_window(1 << 24)
    client.flush()
    client.pump(acknowledge=True, timeout=60)
    return {
        "heads_while_stalled": heads,
        "unsent_while_stalled": during["pageshare_http_unsent_bytes"],
        "read_while_stalled": during["pageshare_cache_logical_read_bytes"],
        "bodies": [
            {"status": client.streams[i]["status"], "ended": client.streams[i]["ended"],
             "length": len(client.streams[i]["body"]), "sha256": hashlib.sha256(client.streams[i]["body"]).hexdigest()}
            for i in ids
        ],
    }


def sendtimeout(port, path):
    """One stream that can never be sent (zero window), the connection kept busy with PINGs: the server must
    close it after its send timeout all the same."""
    client = Client(port, window=0)
    settle(client)
    started = time.monotonic()
    sid = client.request(path)
    closed_after = None
    while time.monotonic() - started < 10 and closed_after is None:
        client.conn.ping(b"pingping")
        client.flush()
        client.pump(acknowledge=False, timeout=0.3)
        if client.closed or client.conn.goaway_last_stream is not None:
            closed_after = time.monotonic() - started
    return {"closed_after": closed_after, "status": client.streams[sid]["status"]}


def stalledstream(port, path):
    """Two streams with zero windows; only the second is given window, slowly: the first must be reset
    (CANCEL) after the send timeout while the connection and the second stream go on."""
    client = Client(port, window=0)
    settle(client)
    started = time.monotonic()
    stuck = client.request(path)
    moving = client.request(path)
    client.conn.increment_flow_control_window(1 << 24)
    client.conn.increment_flow_control_window(16384, stream_id=moving)
    client.flush()
    reset_after = None
    while time.monotonic() - started < 8 and not client.closed and not client.streams[moving]["ended"]:
        events = client.pump(acknowledge=False, timeout=0.1)
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == moving:
                try:
                    client.conn.increment_flow_control_window(event.flow_controlled_length, stream_id=moving)
                except h2.exceptions.StreamClosedError:
                    pass
            if isinstance(event, h2.events.StreamReset) and event.stream_id == stuck and reset_after is None:
                reset_after = time.monotonic() - started
                try:  # no more pacing: the rest at full speed
                    client.conn.increment_flow_control_window(1 << 22, stream_id=moving)
                except h2.exceptions.StreamClosedError:
                    pass
        client.unacknowledged = {}
        client.flush()
        if reset_after is None:
            time.sleep(0.1)  # read the moving stream slowly until the stuck one is reset
    client.pump(acknowledge=True, timeout=30)
    body = client.streams[moving]
    return {
        "reset_after": reset_after, "stuck_reset": client.streams[stuck]["reset"], "closed": client.closed,
        "moving": {"status": body["status"], "ended": body["ended"], "length": len(body["body"]),
                   "sha256": hashlib.sha256(body["body"]).hexdigest()},
    }


def longlived(port, path, seconds):
    """One connection kept for `seconds`, a request every half second: every one must be answered on it."""
    client = Client(port)
    started = time.monotonic()
    statuses = []
    while time.monotonic() - started < seconds and not client.closed:
        sid = client.request(path)
        client.pump(acknowledge=True, timeout=2)
        statuses.append(client.streams[sid]["status"])
        time.sleep(0.5)
    return {"statuses": statuses, "closed": client.closed, "goaway_last_stream": client.conn.goaway_last_stream}


def bigheaders(port, path):
    client = Client(port, window=16384, validate=False)
    good = client.request(path)
    client.pump(acknowledge=False, timeout=0.3)
    big = client.request(path, extra=[("x-padding", "p" * 20000)])
    client.pump(acknowledge=False, timeout=0.5)
    client.acknowledge()
    client.pump(acknowledge=True, timeout=30)
    return {
        "big_status": client.streams[big]["status"], "big_reset": client.streams[big]["reset"],
        "big_body": client.streams[big]["body"].decode(errors="replace"),
        "good_status": client.streams[good]["status"], "good_ended": client.streams[good]["ended"],
        "good_sha256": hashlib.sha256(client.streams[good]["body"]).hexdigest(), "closed": client.closed,
    }


def continuation(port, path):
    """A HEADERS frame without END_HEADERS followed by 20 CONTINUATION frames (CVE-2024-27316 and kin): the
    server must end the connection rather than keep buffering."""
    import hyperframe.frame
    client = Client(port)
    sid = client.conn.get_next_available_stream_id()
    block = client.conn.encoder.encode(
        [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "127.0.0.1")]
        + [(f"x-field-{i}", "v" * 50) for i in range(40)])
    size = -(-len(block) // 21)
    pieces = [block[i * size:(i + 1) * size] for i in range(21)]  # a valid block, over 21 frames
    headers = hyperframe.frame.HeadersFrame(sid, data=pieces[0], flags=["END_STREAM"])
    frames = [headers] + [hyperframe.frame.ContinuationFrame(sid, data=piece) for piece in pieces[1:]]
    frames[-1].flags.add("END_HEADERS")
    try:
        client.sock.sendall(b"".join(frame.serialize() for frame in frames))
    except OSError:
        pass
    client.read_until_closed(5)
    return {"goaway_last_stream": client.conn.goaway_last_stream, "closed": client.closed}


def main():
    port, scenario, *args = sys.argv[1:]
    port = int(port)
    if scenario == "window":
        result = window(port, args[0], int(args[1]))
    elif scenario == "cancel":
        result = cancel(port, args[0], args[1])
    elif scenario == "rapidreset":
        result = rapidreset(port, args[0])
    elif scenario == "malformed":
        result = malformed(port, args[0])
    elif scenario == "goaway":
        result = goaway(port, args[0])
    elif scenario == "overlimit":
        result = overlimit(port, args[0], int(args[1]))
    elif scenario == "stalled":
        result = stalled(port, args[0], int(args[1]))
    elif scenario == "sendtimeout":
        result = sendtimeout(port, args[0])
    elif scenario == "stalledstream":
        result = stalledstream(port, args[0])
    elif scenario == "longlived":
        result = longlived(port, args[0], float(args[1]))
    elif scenario == "bigheaders":
        result = bigheaders(port, args[0])
    elif scenario == "continuation":
        result = continuation(port, args[0])
    elif scenario == "post":
        result = post(port, args[0], int(args[1]))
    else:
        sys.exit(f"unknown scenario {scenario}")
    print(json.dumps(result))


main()
