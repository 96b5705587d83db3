import type { Command } from 'commander';
import { addConfigOptions } from './config-commands.js';

/**
 * Registers `tp-ws doctor [config flags] [--php-user USER] [--proxy-url URL]
 * [--proxy-insecure] [--json]`: checks the configuration, the store, the
 * TeamPass settings, the clocks, the ingest socket, the ports and the
 * reverse proxy, prints what is wrong with its fix, and exits 0 (all ok),
 * 1 (warnings only) or 2 (errors). Run it with the daemon's configuration:
 * the same `--config`, flags and `TPWS_*` environment.
 */
export function registerDoctorCommand(program: Command): void {
  addConfigOptions(program.command('doctor').description('check an installation (config, store, TeamPass settings, ingest socket, ports, proxy) and print each problem with its fix; exit 0 ok, 1 warnings, 2 errors'))
    .option('--php-user <user>', 'the user PHP runs as, checked for access to the ingest socket (default: www-data, when that user exists)')
    .option('--proxy-url <url>', 'also check the reverse proxy at this URL, the one browsers use (e.g. https://teampass.example/ws)')
    .option('--proxy-insecure', 'do not verify the proxy\'s TLS certificate')
    .option('--json', 'print {findings:[{check,code,severity,message,fix}], summary:{ok,warn,error}} instead of the report')
    .action(async (opts: Record<string, unknown>) => {
      // The checks are loaded when doctor runs, not by every tp-ws command (serve keeps its memory).
      const [{ runDoctor }, { exitCodeOf, renderJson, renderText }] = await Promise.all([import('../doctor/doctor.js'), import('../doctor/report.js')]);
      const findings = await runDoctor({
        opts,
        env: process.env,
        phpUser: typeof opts.phpUser === 'string' ? opts.phpUser : null,
        proxyUrl: typeof opts.proxyUrl === 'string' ? opts.proxyUrl : null,
        proxyInsecure: opts.proxyInsecure === true,
      });
      process.stdout.write(opts.json === true ? renderJson(findings) : renderText(findings, process.stdout.isTTY === true));
      process.exitCode = exitCodeOf(findings);
      // Every check has its deadline; should a handle still hold the event
      // loop (a socket some driver keeps), do not let it hold the command too.
      setTimeout(() => process.exit(), 2000).unref();
    });
}
