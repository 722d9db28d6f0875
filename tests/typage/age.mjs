// A tiny CLI over typage (npm `age-encryption`), for the interop tests in
// tests/cipher_typage.rs:
//
//   node age.mjs encrypt (--recipient R | --passphrase-env VAR) [--armor] < in > out
//   node age.mjs decrypt (--identity-file F | --passphrase-env VAR) [--armor] < in > out
//   node age.mjs keygen [--pq]      (prints the identity, then the recipient)
//
// The package is loaded from $ZS_TYPAGE_DIR (the `npm install --prefix` folder
// scripts/setup.sh fills). On failure: the error on stderr and exit 1.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function fail(message) {
  process.stderr.write(`age.mjs: ${message}\n`);
  process.exit(1);
}

async function loadTypage() {
  const dir = process.env.ZS_TYPAGE_DIR;
  if (!dir) fail("ZS_TYPAGE_DIR is not set");
  const require = createRequire(join(dir, "package.json"));
  const entry = require.resolve("age-encryption");
  return import(pathToFileURL(entry).href);
}

function parseArgs(argv) {
  const opts = { recipients: [], identityFiles: [], passphraseEnv: null, armor: false, pq: false };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) fail(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case "--recipient": opts.recipients.push(value()); break;
      case "--identity-file": opts.identityFiles.push(value()); break;
      case "--passphrase-env": opts.passphraseEnv = value(); break;
      case "--armor": opts.armor = true; break;
      case "--pq": opts.pq = true; break;
      default: fail(`unknown argument ${argv[i]}`);
    }
  }
  return opts;
}

function passphrase(name) {
  const pw = process.env[name];
  if (pw === undefined) fail(`the passphrase variable ${name} is not set`);
  return pw;
}

function write(bytes) {
  // No process.exit on success: it could cut a pending write to a pipe.
  process.stdout.write(bytes);
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const opts = parseArgs(rest);
  const age = await loadTypage();
  switch (command) {
    case "keygen": {
      const identity = opts.pq ? await age.generateHybridIdentity() : await age.generateIdentity();
      write(`${identity}\n${await age.identityToRecipient(identity)}\n`);
      break;
    }
    case "encrypt": {
      const e = new age.Encrypter();
      if (opts.passphraseEnv) e.setPassphrase(passphrase(opts.passphraseEnv));
      for (const r of opts.recipients) e.addRecipient(r);
      const file = await e.encrypt(readFileSync(0));
      write(opts.armor ? age.armor.encode(file) : file);
      break;
    }
    case "decrypt": {
      const d = new age.Decrypter();
      if (opts.passphraseEnv) d.addPassphrase(passphrase(opts.passphraseEnv));
      for (const f of opts.identityFiles) {
        // age identity files: one key a line, `#` comments and blank lines.
        for (const line of readFileSync(f, "utf8").split("\n")) {
          const key = line.trim();
          if (key !== "" && !key.startsWith("#")) d.addIdentity(key);
        }
      }
      const input = readFileSync(0);
      const file = opts.armor ? age.armor.decode(input.toString("utf8")) : input;
      write(await d.decrypt(file));
      break;
    }
    default:
      fail(`unknown command ${command ?? "(none)"}; use keygen, encrypt or decrypt`);
  }
}

main().catch((err) => fail(err?.message ?? String(err)));
