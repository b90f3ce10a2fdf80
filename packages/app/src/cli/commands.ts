import type { CliCommand } from './command.js';
import { configCommand } from './config-command.js';
import { roleCommands } from './role-commands.js';
import { holdsCommand, retentionCommand } from './retention.js';
import { searchCommand } from './search.js';
import { alertsCommand } from './alerts.js';
import { proofCommand } from './proof.js';
import { verifyCommand } from './verify.js';
import { checkpointsCommand } from './checkpoints.js';
import { tenantsCommand } from './tenants.js';
import { keysCommand } from './keys.js';
import { webhooksCommand } from './webhooks.js';
import { accessCommand } from './access.js';
import { reviewCommand } from './review.js';
import {
  correctCommand,
  eraseCommand,
  erasuresCommand,
  exportCommand,
  pseudonymsCommand,
  restrictCommand,
} from './privacy.js';

/** Every `vigil` command, in the order `vigil --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  ...roleCommands,
  searchCommand,
  alertsCommand,
  proofCommand,
  verifyCommand,
  checkpointsCommand,
  tenantsCommand,
  keysCommand,
  retentionCommand,
  holdsCommand,
  webhooksCommand,
  exportCommand,
  eraseCommand,
  erasuresCommand,
  correctCommand,
  restrictCommand,
  pseudonymsCommand,
  accessCommand,
  reviewCommand,
  configCommand,
];
