// The cross-reference checks, in the order their diagnostics read best.
import type { Check } from './check.js';
import { checkDuplicateName } from './duplicate-name.js';
import { checkUndefinedReference } from './undefined-reference.js';
import { checkAclCycle } from './acl-cycle.js';
import { checkTcpmuxMaster } from './tcpmux-master.js';
import { checkSocketConflict } from './socket-conflict.js';
import { checkDependencyCycle } from './dependency-cycle.js';

export const CHECKS: readonly Check[] = [checkDuplicateName, checkUndefinedReference, checkAclCycle, checkTcpmuxMaster, checkSocketConflict, checkDependencyCycle];
