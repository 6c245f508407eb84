/**
 * Runs an upload queue for one file in a process of its own, so a test can kill it with SIGKILL in the middle of the
 * upload (a crash: no stop(), no flush, nothing said to the server).
 * argv: <home> <server url> <session> <bundle path> <local file> <sha256> <size> <chunk bytes>
 */
import { ensureHome } from '../../src/main/core/home.js';
import { loadKeyPair } from '../../src/main/core/keys.js';
import { ServerClient } from '../../src/main/upload/client.js';
import { UploadQueue } from '../../src/main/upload/spool.js';

const [root, url, session, path, file, sha256, size, chunk] = process.argv.slice(2) as [string, string, string, string, string, string, string, string];
const home = ensureHome(root);
const q = new UploadQueue({ home, client: new ServerClient(url, loadKeyPair(home.keys), { stallMs: 5000 }), chunkBytes: Number(chunk), retryMinMs: 50 });
q.on('stored', () => process.stdout.write('stored\n'));
q.enqueue({ session, path, file, sha256, size: Number(size) });
q.start();
