// Rule `tcpmux`: subordinates and their master (pies manual, TCPMUX Services): the master
// is an internal `tcpmux` service; a subordinate has service, a tcpmux or tcpmuxplus flag,
// and no socket of its own; service names are unique per master, case-insensitively.
import type { Location } from '../ast.js';
import { type Check, componentsByTag } from './check.js';
import { locationOf } from './undefined-reference.js';
import { suggest } from '../values.js';

export const checkTcpmuxMaster: Check = (config, diags) => {
  const byTag = componentsByTag(config);
  const masters = config.components.filter((c) => c.internal === 'tcpmux').map((c) => c.tag);
  const services = new Map<string, Map<string, Location>>();
  const fallbacks = new Map<string, Location>();
  for (const c of config.components) {
    const tcpmuxFlag = c.flags.has('tcpmux') || c.flags.has('tcpmuxplus');
    const where = `component "${c.tag}"`;
    if (c.tcpmuxMaster === undefined) {
      if (c.match) diags.error('tcpmux', `${where}: "match" rules are tried by a TCPMUX master: add "tcpmux-master TAG"`, locationOf(c, 'match'));
      if (tcpmuxFlag) diags.error('tcpmux', `${where}: flag "${c.flags.has('tcpmux') ? 'tcpmux' : 'tcpmuxplus'}" needs "tcpmux-master TAG"`, locationOf(c, 'flags'));
      continue;
    }
    const master = byTag.get(c.tcpmuxMaster);
    if (!master) {
      const hint = suggest(c.tcpmuxMaster, masters);
      diags.error('tcpmux', `${where}: tcpmux-master names no component "${c.tcpmuxMaster}"${hint ? ` (did you mean "${hint}"?)` : ''}`, locationOf(c, 'tcpmux-master'));
    } else if (master.internal !== 'tcpmux') {
      diags.error('tcpmux', `${where}: tcpmux-master "${c.tcpmuxMaster}" is not a TCPMUX master (it needs "service tcpmux; flags internal;")`, locationOf(c, 'tcpmux-master'), [
        { message: `"${master.tag}" is defined here`, location: master.location },
      ]);
    }
    const sniffed = c.match !== undefined || c.statementLocations.has('match');
    for (const rule of c.match ?? []) {
      if (rule.kind !== 'default' && rule.kind !== 'timeout') continue;
      // Only one component can take what nothing else matched (or a silent client).
      const key = `${c.tcpmuxMaster}\0${rule.kind}`;
      const first = fallbacks.get(key);
      if (first) diags.error('tcpmux', `${where}: master "${c.tcpmuxMaster}" already has a "match ${rule.kind}" rule`, locationOf(c, 'match'), [{ message: 'first given here', location: first }]);
      else fallbacks.set(key, locationOf(c, 'match'));
    }
    if (!tcpmuxFlag && c.service !== undefined) diags.error('tcpmux', `${where}: a TCPMUX subordinate needs flag tcpmux (it replies itself) or tcpmuxplus (tpies replies "+")`, locationOf(c, 'tcpmux-master'));
    if (c.flags.has('tcpmux') && c.flags.has('tcpmuxplus')) diags.error('tcpmux', `${where}: flags tcpmux and tcpmuxplus exclude each other`, locationOf(c, 'flags'));
    if (c.socket) diags.error('tcpmux', `${where}: a TCPMUX subordinate is reached through its master and takes no "socket"`, locationOf(c, 'socket'));
    if (c.internal) diags.error('tcpmux', `${where}: a TCPMUX subordinate cannot be an internal service`, locationOf(c, 'flags'));
    if (c.mode !== 'inetd') diags.error('tcpmux', `${where}: a TCPMUX subordinate runs per connection (mode inetd), not mode ${c.mode}`, locationOf(c, 'mode'));
    if (c.service === undefined) {
      // A `service` or `match` that was given but refused has been reported already.
      if (!c.statementLocations.has('service') && !sniffed) diags.error('tcpmux', `${where}: a TCPMUX subordinate needs "service NAME", "match …", or both`, locationOf(c, 'tcpmux-master'));
      continue;
    }
    // RFC 1078: service names are case-insensitive; "help" is always the built-in listing.
    const key = c.service.toLowerCase();
    if (key === 'help') diags.error('tcpmux', `${where}: "help" is the built-in TCPMUX listing and cannot be a service name`, locationOf(c, 'service'));
    const perMaster = services.get(c.tcpmuxMaster) ?? new Map<string, Location>();
    services.set(c.tcpmuxMaster, perMaster);
    const first = perMaster.get(key);
    if (first) {
      diags.error('tcpmux', `${where}: service "${c.service}" is already served by master "${c.tcpmuxMaster}"`, locationOf(c, 'service'), [{ message: 'first defined here', location: first }]);
    } else perMaster.set(key, locationOf(c, 'service'));
  }
};
