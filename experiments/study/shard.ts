// `--shard auto`: the shard of this task from the scheduler's environment.
//   Slurm job array: SLURM_ARRAY_TASK_ID within SLURM_ARRAY_TASK_MIN..MAX (step
//     SLURM_ARRAY_TASK_STEP), the count SLURM_ARRAY_TASK_COUNT. When the count is given
//     (`--shard auto/N` or MEDGRAD_SHARD_COUNT=N), task ids are the shard numbers 1..N instead,
//     so one task can be resubmitted alone (`sbatch --array=2`) and still be shard 2 of N.
//   Kubernetes Indexed Job: JOB_COMPLETION_INDEX (0-based) is shard index+1; the Job does not
//     tell its pods its completions, so the count is `--shard auto/N` or MEDGRAD_SHARD_COUNT.
import { parseShard } from './runner.js';

export interface Shard { index: number; count: number }

const int = (v: string | undefined): number | undefined => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);

/** `i/n`, `auto` or `auto/N` into a shard (1-based index); `auto` reads `env`. */
export function resolveShard(spec: string, env: NodeJS.ProcessEnv = process.env): Shard & { from: string } {
  const m = /^auto(?:\/(\d+))?$/.exec(spec);
  if (!m) return { ...parseShard(spec), from: 'the command line' };
  const fromEnv = env.MEDGRAD_SHARD_COUNT;
  if (fromEnv !== undefined && fromEnv !== '' && !(int(fromEnv)! >= 1)) throw new Error(`medgrad study: MEDGRAD_SHARD_COUNT must be a positive integer, got '${fromEnv}'`);
  if (m[1] !== undefined && !(Number(m[1]) >= 1)) throw new Error(`medgrad study: --shard auto/N needs N >= 1, got '${spec}'`);
  if (m[1] !== undefined && fromEnv && Number(m[1]) !== int(fromEnv)) throw new Error(`medgrad study: --shard ${spec} disagrees with MEDGRAD_SHARD_COUNT=${fromEnv}`);
  const given = m[1] !== undefined ? Number(m[1]) : fromEnv ? int(fromEnv) : undefined;
  const id = int(env.SLURM_ARRAY_TASK_ID);
  if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    if (id === undefined) throw new Error(`medgrad study: --shard auto: SLURM_ARRAY_TASK_ID is '${env.SLURM_ARRAY_TASK_ID}', not a task number`);
    if (given !== undefined) {
      if (id < 1 || id > given) throw new Error(`medgrad study: --shard auto with a count of ${given}: the Slurm array task id ${id} must be a shard number 1..${given} (submit with --array=1-${given})`);
      return { index: id, count: given, from: `Slurm array task ${id} of shards 1..${given}` };
    }
    const min = int(env.SLURM_ARRAY_TASK_MIN), max = int(env.SLURM_ARRAY_TASK_MAX), step = int(env.SLURM_ARRAY_TASK_STEP) ?? 1;
    const count = int(env.SLURM_ARRAY_TASK_COUNT);
    if (min === undefined || (max === undefined && count === undefined)) {
      throw new Error('medgrad study: --shard auto: SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX or SLURM_ARRAY_TASK_COUNT; give the count (--shard auto/N or MEDGRAD_SHARD_COUNT)');
    }
    const span = max === undefined ? count! : Math.floor((max - min) / step) + 1;
    if (count !== undefined && count !== span) {
      throw new Error(`medgrad study: --shard auto: the Slurm array is not a range (${count} tasks between ${min} and ${max}); submit --array=1-N, or give the count (--shard auto/N) with task ids 1..N`);
    }
    const index = (id - min) / step + 1;
    if (!Number.isInteger(index) || index < 1 || index > span) throw new Error(`medgrad study: --shard auto: Slurm array task ${id} is not in ${min}..${max ?? '?'} step ${step}`);
    return { index, count: span, from: `Slurm array task ${id} (${min}..${min + (span - 1) * step}${step > 1 ? ` step ${step}` : ''})` };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    const k = int(env.JOB_COMPLETION_INDEX);
    if (k === undefined) throw new Error(`medgrad study: --shard auto: JOB_COMPLETION_INDEX is '${env.JOB_COMPLETION_INDEX}', not an index`);
    if (given === undefined) throw new Error('medgrad study: --shard auto in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is set) needs the count: --shard auto/N or MEDGRAD_SHARD_COUNT=N, N the Job\'s completions');
    if (k >= given) throw new Error(`medgrad study: --shard auto: JOB_COMPLETION_INDEX ${k} is not below the count ${given} (the Job's completions must equal the count)`);
    return { index: k + 1, count: given, from: `Kubernetes completion index ${k} of ${given}` };
  }
  throw new Error('medgrad study: --shard auto found no scheduler task: set by a Slurm job array (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN/MAX or SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shard auto/N or MEDGRAD_SHARD_COUNT); outside them give --shard i/n');
}
