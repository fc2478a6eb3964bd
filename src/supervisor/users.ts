// User and group lookups for `user`/`group`/`allgroups` (pies.md §4.3). Node has no
// getpwnam, so this reads /etc/passwd and /etc/group itself (NSS sources such as LDAP are
// not seen). Numeric ids are accepted even without an entry. Reads files; not pure.
import { readFileSync } from 'node:fs';

export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  /** Primary group; absent only for a numeric uid that has no passwd entry. */
  readonly gid?: number;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  /** Users listed in the group's fourth field (not those whose primary group it is). */
  readonly members: readonly string[];
}

/** What exec-chain needs to know about accounts; tests pass their own. */
export interface AccountDb {
  lookupUser(nameOrId: string): UserEntry | undefined;
  lookupGroup(nameOrId: string): GroupEntry | undefined;
  /** Groups that list `user` as a member. */
  groupsOf(user: string): readonly GroupEntry[];
}

// ids are 32-bit and (uid_t)-1 means "no change" to the kernel, so it is never a real id.
const MAX_ID = 0xfffffffe;

export function parsePasswd(text: string): UserEntry[] {
  return records(text, 7).flatMap((f) => {
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    return uid === undefined || gid === undefined ? [] : [{ name: f[0]!, uid, gid }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return records(text, 4).flatMap((f) => {
    const gid = parseId(f[2]!);
    return gid === undefined ? [] : [{ name: f[0]!, gid, members: f[3]!.split(',').filter((m) => m !== '') }];
  });
}

/** An AccountDb over given passwd/group file contents. */
export function accountsFromText(passwd: string, group: string): AccountDb {
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);
  return {
    lookupUser(nameOrId) {
      const byName = users.find((u) => u.name === nameOrId);
      if (byName) return byName;
      const uid = parseId(nameOrId);
      if (uid === undefined) return undefined;
      return users.find((u) => u.uid === uid) ?? { name: nameOrId, uid };
    },
    lookupGroup(nameOrId) {
      const byName = groups.find((g) => g.name === nameOrId);
      if (byName) return byName;
      const gid = parseId(nameOrId);
      if (gid === undefined) return undefined;
      return groups.find((g) => g.gid === gid) ?? { name: nameOrId, gid, members: [] };
    },
    groupsOf: (user) => groups.filter((g) => g.members.includes(user)),
  };
}

/**
 * An AccountDb that re-reads the files on every call, so accounts added while tpies runs
 * are seen at the next spawn. An unreadable file counts as empty.
 */
export function accountsFromFiles(passwdPath = '/etc/passwd', groupPath = '/etc/group'): AccountDb {
  const load = (): AccountDb => accountsFromText(readOrEmpty(passwdPath), readOrEmpty(groupPath));
  return {
    lookupUser: (nameOrId) => load().lookupUser(nameOrId),
    lookupGroup: (nameOrId) => load().lookupGroup(nameOrId),
    groupsOf: (user) => load().groupsOf(user),
  };
}

export const systemAccounts: AccountDb = accountsFromFiles();

export function lookupUser(nameOrId: string): UserEntry | undefined {
  return systemAccounts.lookupUser(nameOrId);
}

export function lookupGroup(nameOrId: string): GroupEntry | undefined {
  return systemAccounts.lookupGroup(nameOrId);
}

// Colon-separated records with at least `fields` fields; comments, blank lines and NIS
// compat lines ("+…", "-…") are skipped.
function records(text: string, fields: number): string[][] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !/^[#+-]/.test(line))
    .map((line) => line.split(':'))
    .filter((f) => f.length >= fields && f[0] !== '');
}

function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
