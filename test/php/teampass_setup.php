<?php
/**
 * Configure the TeamPass drop-in from the environment: with TeamPass's
 * settings.php constants when TPWS_USE_CONSTANTS=1 (MySQL only), else with
 * TeamPass::configure().
 */

declare(strict_types=1);

function configure_dropin(): void
{
    $common = ['socket' => env('TPWS_SOCKET', ''), 'encoding' => env('TPWS_ENCODING', 'auto'), 'timeout_ms' => (int) env('TPWS_TIMEOUT_MS', '1000'), 'logger' => test_logger()];
    if (env('TPWS_USE_CONSTANTS') === '1') {
        define('DB_HOST', (string) env('TPWS_DB_HOST'));
        define('DB_PORT', (string) env('TPWS_DB_PORT'));
        define('DB_NAME', (string) env('TPWS_DB_NAME'));
        define('DB_USER', (string) env('TPWS_DB_USER'));
        define('DB_PREFIX', (string) env('TPWS_PREFIX', 'teampass_'));
        define('DB_ENCODING', 'utf8mb4');
        $password = (string) env('TPWS_DB_PASSWORD');
        TpWs\TeamPass::configureFromConstants(static fn (): string => $password, $common);
        return;
    }
    $options = $common + ['prefix' => env('TPWS_PREFIX', 'teampass_')];
    if (env('TPWS_DSN', '') !== '') {
        $options += ['dsn' => env('TPWS_DSN'), 'user' => env('TPWS_DB_USER'), 'password' => env('TPWS_DB_PASSWORD')];
    }
    TpWs\TeamPass::configure($options);
}
