"""A current ClickHouse for the tests: chDB (the ClickHouse engine in-process, from PyPI)
behind as much of ClickHouse's HTTP interface as Meridian's client uses.

    python server.py --port PORT --path DIR

- `GET /ping` answers `Ok.`;
- `POST /` runs the SQL of the body, or of the `query` parameter with the body as the
  data of an `INSERT ... FORMAT <format>` (LZ4-compressed in ClickHouse's block format
  when `decompress=1`, as the client sends it);
- `database` selects the database, `default_format` the output format when the SQL
  names none; other settings are ignored;
- errors answer 500 with ClickHouse's text (`Code: N. DB::Exception: ...`) and the
  `X-ClickHouse-Exception-Code` header, as the server does.

chDB runs one query at a time here (a lock), which is plenty for the tests. Inserted data
is staged in a file and read with the `file()` table function, since chDB takes SQL as
text.
"""

import argparse
import http.server
import os
import re
import struct
import tempfile
import threading
import urllib.parse

import lz4.block
from chdb import session as chdb_session

INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[\w.`]+)\s*(?:\((?P<columns>[^)]*)\))?\s*FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)
HAS_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.IGNORECASE)
CODE = re.compile(r"Code: (\d+)")


def decompress(data: bytes) -> bytes:
    """ClickHouse's compressed blocks: a 16-byte checksum, a method byte, the compressed
    size (with the 9-byte header) and the decompressed size, then the payload."""
    out, at = [], 0
    while at < len(data):
        method = data[at + 16]
        compressed, size = struct.unpack_from("<II", data, at + 17)
        payload = data[at + 25 : at + 16 + compressed]
        if method == 0x82:
            out.append(lz4.block.decompress(payload, uncompressed_size=size))
        elif method == 0x02:
            out.append(payload)
        else:
            raise ValueError(f"compression method {method:#x} is not supported")
        at += 16 + compressed
    return b"".join(out)


class Engine:
    def __init__(self, path: str):
        self.session = chdb_session.Session(path)
        self.lock = threading.Lock()
        self.staging = tempfile.mkdtemp(prefix="chdb-insert-")

    def query(self, sql: str, database: str | None, fmt: str | None) -> bytes:
        with self.lock:
            if database:
                self.session.query(f"USE `{database}`")
            if fmt and not HAS_FORMAT.search(sql):
                result = self.session.query(sql, fmt)
            else:
                result = self.session.query(sql)
            return result.bytes() if result is not None else b""

    def insert(self, match: re.Match, data: bytes, database: str | None) -> bytes:
        table = match["table"].replace("`", "")
        names = [c.strip().strip("`") for c in (match["columns"] or "").split(",") if c.strip()]
        described = self.query(f"DESCRIBE TABLE {table}", database, "TabSeparated").decode()
        types = {}
        for line in described.splitlines():
            fields = line.split("\t")
            types[fields[0]] = fields[1]
        names = names or list(types)
        structure = ", ".join(f"`{n}` {types[n]}" for n in names)
        fd, path = tempfile.mkstemp(dir=self.staging)
        try:
            with os.fdopen(fd, "wb") as staged:
                staged.write(data)
            columns = ", ".join(f"`{n}`" for n in names)
            sql = (
                f"INSERT INTO {table} ({columns}) "
                f"SELECT * FROM file('{path}', '{match['format']}', '{structure}')"
            )
            return self.query(sql, database, None)
        finally:
            os.unlink(path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine

    def log_message(self, *args):
        pass

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/ping":
            return self.answer(200, b"Ok.\n")
        params = dict(urllib.parse.parse_qsl(url.query))
        self.run(params.get("query", ""), b"", params)

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        body = self.body()
        if "query" in params:
            self.run(params["query"], body, params)
        else:
            self.run(body.decode(), b"", params)

    def run(self, sql: str, data: bytes, params: dict):
        database = params.get("database")
        try:
            insert = INSERT.match(sql)
            if insert and data:
                if params.get("decompress") == "1":
                    data = decompress(data)
                out = self.engine.insert(insert, data, database)
            else:
                fmt = params.get("default_format") or "TabSeparated"
                out = self.engine.query(sql, database, fmt)
            self.answer(200, out)
        except Exception as error:  # chDB's errors carry ClickHouse's text and code
            text = str(error)
            code = CODE.search(text)
            headers = [("X-ClickHouse-Exception-Code", code[1])] if code else []
            self.answer(500, (text.rstrip() + "\n").encode(), headers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    args = parser.parse_args()
    Handler.engine = Engine(args.path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
