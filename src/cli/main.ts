#!/usr/bin/env node
/**
 * The sifkit command. A TAB's question (`sifkit __complete`) is answered by
 * a small entry point that loads neither the commands nor the library, so
 * the shell does not wait for it; everything else loads the whole program.
 */
import { COMPLETE } from './complete';

if (require.main === module) {
  if (process.argv[2] === COMPLETE)
    void import('./complete-main').then((m) => m.answerCompletion(process.argv.slice(3)));
  else void import('./program').then((m) => m.runProgram(process.argv));
}
