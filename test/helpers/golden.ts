// Golden-file corpora shared by the grammar and config tests: list a corpus directory, and
// compare output with its expectation file (UPDATE_GOLDEN=1 rewrites the expectations).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const UPDATE_GOLDEN = process.env['UPDATE_GOLDEN'] === '1';

export interface GoldenCorpus {
  /** The `.conf` files of a corpus subdirectory, sorted. */
  confFiles(dir: string): string[];
  /**
   * Compare `actual` with the golden file, or rewrite it under UPDATE_GOLDEN=1. An expectation
   * of '' means "no file": it is deleted on update and must be absent otherwise.
   */
  golden(relative: string, actual: string): void;
}

export function goldenCorpus(root: string): GoldenCorpus {
  return {
    confFiles: (dir) =>
      readdirSync(join(root, dir))
        .filter((f) => f.endsWith('.conf'))
        .sort(),
    golden(relative, actual) {
      const full = join(root, relative);
      if (UPDATE_GOLDEN) {
        if (actual !== '') writeFileSync(full, actual);
        else if (existsSync(full)) unlinkSync(full);
        return;
      }
      if (actual !== '' && !existsSync(full)) assert.fail(`${relative} is missing; run with UPDATE_GOLDEN=1 to create it`);
      const expected = existsSync(full) ? readFileSync(full, 'utf8') : '';
      assert.equal(actual, expected, `${relative} differs; run with UPDATE_GOLDEN=1 if the change is intended`);
    },
  };
}
