// The base of every tskit command: a TskitError (anything the user can fix) prints as one
// "tskit: error: ..." message without a stack and exits with its code.
import {Command} from '@oclif/core';
import {TskitError} from '../errors.ts';

export abstract class TskitCommand extends Command {
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof TskitError) {
      process.stderr.write(`tskit: error: ${error.message}\n`);
      this.exit(error.exitCode);
    }
    return super.catch(error);
  }
}
