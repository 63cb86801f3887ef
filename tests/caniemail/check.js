// Reads an email's HTML on stdin, prints doiuse-email's verdict as JSON for the given
// client globs (argv). The caniemail data ships inside the package: no network.
const { doIUseEmail } = require('@jsx-email/doiuse-email');

let html = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { html += chunk; });
process.stdin.on('end', () => {
  const result = doIUseEmail(html, { emailClients: process.argv.slice(2) });
  process.stdout.write(JSON.stringify({ success: result.success, errors: result.errors || [] }));
});
