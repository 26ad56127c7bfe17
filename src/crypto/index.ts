import type { Config } from '../config/env.js';
import type { Logger } from '../config/logger.js';
import { LocalFileStore, type FileStore } from '../storage/file-store.js';
import { CryptoError } from './errors.js';
import { LocalKeyProvider, loadOrCreateEvaluationKeyFile, parseKekList, readKeyFile, type KeyProvider } from './key-provider.js';
import { Keyring } from './keyring.js';

/** Builds the key provider the configuration names. Production never gets an evaluation KEK. */
export async function createKeyProvider(config: Config, logger: Logger): Promise<KeyProvider> {
  const k = config.keys;
  if (k.kind === 'env') {
    const parsed = parseKekList(k.list, k.active);
    return new LocalKeyProvider(parsed.keys, parsed.active, { practiceKeysDir: config.keysDir });
  }
  if (k.kind === 'file') {
    const parsed = await readKeyFile(k.file);
    if (parsed.evaluation && config.isProduction) {
      throw new CryptoError(`KEK_FILE: ${k.file} holds a generated evaluation key; production needs your own key-encryption keys`);
    }
    return new LocalKeyProvider(parsed.keys, parsed.active, { practiceKeysDir: config.keysDir, isEvaluation: parsed.evaluation ?? false });
  }
  if (config.isProduction) throw new CryptoError('KEK_FILE: production needs key-encryption keys (KEK_FILE or ENAMEL_KEKS)');
  const { file, created, keyFile } = await loadOrCreateEvaluationKeyFile(config.dataDir);
  logger.warn(
    { file },
    created
      ? '*** EVALUATION KEYS GENERATED: the key-encryption key was written next to the data. Anyone with DATA_DIR can decrypt it. Not for real patient data. ***'
      : '*** EVALUATION KEYS in use (DATA_DIR/keys): not for real patient data. ***',
  );
  return new LocalKeyProvider(keyFile.keys, keyFile.active, { practiceKeysDir: config.keysDir, isEvaluation: true });
}

export interface CryptoDeps {
  keyring: Keyring;
  files: FileStore;
}

export async function createCrypto(config: Config, logger: Logger): Promise<CryptoDeps> {
  return { keyring: new Keyring(await createKeyProvider(config, logger)), files: new LocalFileStore(config.filesDir) };
}
