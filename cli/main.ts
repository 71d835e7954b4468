import { Command, CommanderError } from 'commander';
import { registerCalibrate } from './commands/calibrate.ts';
import { registerEval } from './commands/eval.ts';
import { registerFormat } from './commands/format.ts';
import { registerImport } from './commands/import.ts';
import { registerRisk } from './commands/risk.ts';
import { registerScore } from './commands/score.ts';
import { registerService } from './commands/service.ts';
import { registerTargets } from './commands/targets.ts';
import { registerTasks } from './commands/tasks.ts';
import { registerTrain } from './commands/train.ts';
import { registerValidate } from './commands/validate.ts';
import { CliError } from './errors.ts';

const program = new Command()
  .name('cann-quant')
  .description(
    'INT8 quantization benchmarking: calibrate, format, validate and score recipes locally',
  )
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

registerTasks(program);
registerEval(program);
registerTargets(program);
registerFormat(program);
registerValidate(program);
registerCalibrate(program);
registerScore(program);
registerService(program);
registerTrain(program);
registerRisk(program);
registerImport(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit through here with code 0; usage errors were printed already.
    process.exitCode = err.exitCode;
  } else if (err instanceof CliError) {
    process.stderr.write(`cann-quant: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cann-quant: ${message.split('\n')[0]}\n`);
    if (process.env.CANN_QUANT_DEBUG) console.error(err);
    process.exitCode = 1;
  }
}
