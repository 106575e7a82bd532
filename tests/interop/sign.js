#!/usr/bin/env node
// Signs the requests of cases.json with the AWS SDK for JavaScript's SigV4
// signer (@smithy/signature-v4, SHA-256 from @aws-crypto/sha256-js) and
// prints one JSON line per signed request: {name, signature, authorization}.
// sigv4_interop.c signs the same inputs with ibsync's signer and compares.
//
// Usage: node sign.js [cases.json]
"use strict";

const fs = require("fs");
const path = require("path");
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");

// The SDK's HttpRequest carries the query decoded, repeated keys as arrays;
// '+' stays a literal plus, as in ibsync's canonical query.
function parseQuery(raw) {
  const query = {};
  for (const piece of raw.split("&")) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const key = decodeURIComponent(eq < 0 ? piece : piece.slice(0, eq));
    const value = eq < 0 ? "" : decodeURIComponent(piece.slice(eq + 1));
    if (!(key in query)) query[key] = value;
    else if (Array.isArray(query[key])) query[key].push(value);
    else query[key] = [query[key], value];
  }
  return query;
}

async function main() {
  const file = process.argv[2] || path.join(__dirname, "cases.json");
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  const date = new Date(spec.time * 1000);

  for (const c of spec.cases) {
    for (const withToken of [false, true]) {
      const credentials = {
        accessKeyId: spec.credentials.accessKeyId,
        secretAccessKey: spec.credentials.secretAccessKey,
      };
      if (withToken) credentials.sessionToken = spec.credentials.sessionToken;
      const signer = new SignatureV4({
        credentials,
        region: spec.region,
        service: spec.service,
        sha256: Sha256,
        uriEscapePath: true,
        applyChecksum: c.contentSha256,
      });
      const headers = {};
      for (const [name, value] of c.headers) headers[name] = value;
      const host = headers.Host || headers.host;
      const request = {
        method: c.method,
        protocol: "https:",
        hostname: host,
        path: c.path,
        query: parseQuery(c.query),
        headers,
        body: c.body === "" ? undefined : c.body,
      };
      const signed = await signer.sign(request, { signingDate: date });
      const authorization = signed.headers.authorization;
      const signature = /Signature=([0-9a-f]{64})$/.exec(authorization)[1];
      const name = c.name + (withToken ? "+token" : "");
      process.stdout.write(JSON.stringify({ name, signature, authorization }) + "\n");
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
