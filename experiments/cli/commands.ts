// The `medgrad` commands by name, and what each one provides. Kept apart from main.ts (which runs
// on import) so that tests can call a command's run() directly.
import type { NumberRules } from './args.js';
import { infoCommand } from './info.js';
import { profileCommand } from './profile.js';
import { modelsCommand } from './models.js';
import { trainCommand } from './train.js';
import { studyCommand } from './study.js';
import { attackCommand } from './attack.js';
import { reportCommand } from './report.js';
import { tuneCommand } from './tune.js';

export interface Command {
  summary: string;
  usage: string;
  /** Its numeric options and their rules (checked by the tests, option by option). */
  numberOptions: NumberRules;
  run(argv: string[]): Promise<number>;
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  info: infoCommand,
  profile: profileCommand,
  models: modelsCommand,
  train: trainCommand,
  attack: attackCommand,
  study: studyCommand,
  report: reportCommand,
  tune: tuneCommand,
};
