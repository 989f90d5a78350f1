"""A test-only Hugging Face Hub on 127.0.0.1: the file-resolve protocol that ``hf_hub_download`` uses and
the endpoints that ``HfApi.create_repo`` / ``upload_folder`` need for regular (non-LFS) uploads.

Repos are folders ``root/<org>/<name>/``. Served:
    HEAD/GET /<org>/<name>/resolve/<revision>/<file>   X-Repo-Commit, ETag, Content-Length; 404 with
                                                        X-Error-Code RepoNotFound / EntryNotFound
    POST /api/validate-yaml                             the model card's YAML header must parse
    POST /api/repos/create                              {"name", "organization"} -> {"url"}
    POST /api/models/<org>/<name>/preupload/<revision>  every file "regular"
    POST /api/models/<org>/<name>/commit/<revision>     NDJSON header + base64 files
The server binds to 127.0.0.1 only, answers at most ``max_requests`` requests, and is stopped by the
fixture (or by ``stop()``).
"""
import base64
import gzip
import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import yaml


class LocalHub:
    def __init__(self, root: str, max_requests: int = 500):
        self.root = root
        self.max_requests = max_requests
        self.requests = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _count(self) -> bool:
                hub.requests.append((self.command, self.path))
                if len(hub.requests) > hub.max_requests:
                    self._send(429, b'too many requests for the test hub')
                    return False
                return True

            def _send(self, status, body=b'', headers=None, head_only=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def _json(self, obj, status=200):
                self._send(status, json.dumps(obj).encode(), {'Content-Type': 'application/json'})

            def _resolve(self, head_only: bool):
                parts = unquote(self.path.split('?')[0]).lstrip('/').split('/')
                if len(parts) < 5 or parts[2] != 'resolve':
                    return self._send(404, b'not found', head_only=head_only)
                repo, filename = '/'.join(parts[:2]), '/'.join(parts[4:])
                repo_dir = os.path.join(hub.root, repo)
                if not os.path.isdir(repo_dir):
                    return self._send(404, b'repo not found', {'X-Error-Code': 'RepoNotFound'}, head_only)
                path = os.path.join(repo_dir, filename)
                if not os.path.isfile(path):
                    return self._send(404, b'entry not found', {'X-Error-Code': 'EntryNotFound'}, head_only)
                with open(path, 'rb') as f:
                    data = f.read()
                headers = {'X-Repo-Commit': hub.commit(repo), 'ETag': f'"{hashlib.sha256(data).hexdigest()}"',
                           'Content-Type': 'application/octet-stream'}
                self._send(200, data, headers, head_only)

            def do_HEAD(self):
                if self._count():
                    self._resolve(head_only=True)

            def do_GET(self):
                if self._count():
                    self._resolve(head_only=False)

            def do_POST(self):
                if not self._count():
                    return
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                if self.headers.get('Content-Encoding') == 'gzip':
                    body = gzip.decompress(body)
                parts = self.path.split('?')[0].strip('/').split('/')
                if parts[:2] == ['api', 'validate-yaml']:  # model-card metadata, checked like the Hub does
                    content = json.loads(body)['content']
                    try:
                        meta = yaml.safe_load(content.split('---')[1]) if content.startswith('---') else None
                        ok = isinstance(meta, dict)
                    except yaml.YAMLError:
                        ok = False
                    if not ok:
                        return self._json({'errors': [{'message': 'invalid YAML metadata'}]}, status=400)
                    return self._json({'warnings': []})
                if parts[:3] == ['api', 'repos', 'create']:
                    req = json.loads(body)
                    repo = f"{req['organization']}/{req['name']}" if req.get('organization') else req['name']
                    os.makedirs(os.path.join(hub.root, repo), exist_ok=True)
                    return self._json({'url': f'{hub.endpoint}/{repo}', 'name': repo})
                if len(parts) == 6 and parts[:2] == ['api', 'models'] and parts[4] == 'preupload':
                    files = json.loads(body)['files']
                    return self._json({'files': [
                        {'path': f['path'], 'uploadMode': 'regular', 'shouldIgnore': False} for f in files]})
                if len(parts) == 6 and parts[:2] == ['api', 'models'] and parts[4] == 'commit':
                    repo = f'{parts[2]}/{parts[3]}'
                    if not os.path.isdir(os.path.join(hub.root, repo)):
                        return self._send(404, b'repo not found', {'X-Error-Code': 'RepoNotFound'})
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item['key'] == 'file':
                            value = item['value']
                            path = os.path.join(hub.root, repo, value['path'])
                            os.makedirs(os.path.dirname(path), exist_ok=True)
                            with open(path, 'wb') as f:
                                f.write(base64.b64decode(value['content']))
                    oid = hub.commit(repo)
                    return self._json({'commitUrl': f'{hub.endpoint}/{repo}/commit/{oid}', 'commitOid': oid,
                                       'success': True})
                self._send(404, b'not found')

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f'http://127.0.0.1:{self._server.server_address[1]}'
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs=dict(poll_interval=0.1),
                                        daemon=True)
        self._thread.start()

    def commit(self, repo: str) -> str:
        """A 40-hex commit id that changes with the repo's content."""
        digest = hashlib.sha1(repo.encode())
        repo_dir = os.path.join(self.root, repo)
        for name in sorted(os.listdir(repo_dir)):
            with open(os.path.join(repo_dir, name), 'rb') as f:
                digest.update(name.encode() + hashlib.sha256(f.read()).digest())
        return digest.hexdigest()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
