// The only importer of koffi: the C library already in the process (dlopen(NULL): glibc or
// musl), for the calls Node has no API for. Loaded lazily: a missing or broken koffi turns
// into an Error for the caller to handle, never a failed start. The modules beside this one
// (libc.ts, …) bind the functions they need from it.
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

export type KoffiModule = typeof Koffi;
export type KoffiLibrary = ReturnType<KoffiModule['load']>;

export interface Native {
  readonly koffi: KoffiModule;
  readonly lib: KoffiLibrary;
}

let cached: Native | Error | undefined;

export function loadNative(): Native | Error {
  if (cached !== undefined) return cached;
  try {
    if (process.platform !== 'linux') throw new Error(`unsupported platform ${process.platform}`);
    const koffi = createRequire(import.meta.url)('koffi') as KoffiModule;
    cached = { koffi, lib: koffi.load(null) };
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}
