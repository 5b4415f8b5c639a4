// Drives ds-net (the social network's pages) in headless Chromium: sign up, a refused and
// an accepted login, compose with a mention, a URL, HTML and an image, the timelines,
// follow and unfollow, log out. Asserts what a user would see; keeps screenshots.
//
//   node tests/browser/socialnet.cjs GATEWAY_URL SCREENSHOT_DIR
//
// `ben` must exist (password `ben-pw`) before it runs. Exits non-zero with the reason on
// the first thing that is not as expected.
const { chromium } = require('playwright-core');
const path = require('path');

const [gateway, shots] = process.argv.slice(2);
const base = `${gateway}/function/ds-net`;
// A 2x2 PNG (red, green, blue, white), encoded here so the test needs no file.
function png() {
  const zlib = require('zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4); sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(2, 0); header.writeUInt32BE(2, 4);
  header[8] = 8; header[9] = 2; // 8-bit RGB
  const rows = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255]);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}
const PNG = png();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(30000);

    // Sign up.
    await page.goto(`${base}/signup`);
    await page.fill('#username', 'ann');
    await page.fill('#first_name', 'Ann');
    await page.fill('#last_name', 'Example');
    await page.fill('#password', 'ann-pw');
    await shot(page, '01-signup');
    await Promise.all([page.waitForNavigation(), page.click('#signup')]);
    check((await text(page, '#error')).includes('Signed up'), 'sign-up did not confirm');

    // A wrong password is refused on the page.
    await page.fill('#username', 'ann');
    await page.fill('#password', 'wrong');
    await Promise.all([page.waitForNavigation(), page.click('#login')]);
    check((await text(page, '#error')).includes('incorrect username or password'),
      'a wrong password was not refused');

    // Log in.
    await page.fill('#username', 'ann');
    await page.fill('#password', 'ann-pw');
    await Promise.all([page.waitForNavigation(), page.click('#login')]);
    check((await text(page, 'h1')).includes('Welcome, ann'), 'login did not reach the main page');

    // Compose: a mention, a URL, markup that must show as text, and an image.
    const post = 'Hello @ben, see https://example.com/page <b>not bold</b>';
    await page.fill('#text', post);
    await page.setInputFiles('#image', { name: 'dot.png', mimeType: 'image/png', buffer: PNG });
    await Promise.all([page.waitForNavigation({ url: /\/main/ }), page.click('#compose')]);
    const mine = page.locator('#user-timeline .post').first();
    const shown = (await mine.locator('.text').textContent()) || '';
    check(shown.includes('<b>not bold</b>'), `the post's markup was not shown as text: ${shown}`);
    check(await mine.locator('.text b').count() === 0, 'the post text was rendered as HTML');
    check(shown.includes('http://short-u.rl/') && !shown.includes('example.com'),
      `the URL was not shortened: ${shown}`);
    check((await mine.locator('.urls').textContent()).includes('https://example.com/page'),
      'the short URL does not show its expansion');
    const img = mine.locator('img');
    await img.waitFor();
    const width = await img.evaluate((el) => el.complete ? el.naturalWidth : 0);
    check(width === 2, `the uploaded image did not load (width ${width})`);
    await shot(page, '02-main-after-compose');

    // Ben's profile: follow him.
    await page.goto(`${base}/profile?user=ben`);
    check((await text(page, '#followers')) === '0', 'ben should start without followers');
    await Promise.all([page.waitForNavigation(), page.click('#follow')]);
    check((await text(page, '#followers')) === '1', 'following did not count');
    check(await page.locator('#unfollow').count() === 1, 'no unfollow button after following');
    await shot(page, '03-profile-following');

    // Ben posts; it reaches ann's home timeline.
    const benId = await page.evaluate(async (gw) => {
      const r = await fetch(`${gw}/function/get-user-id`, { method: 'POST',
        body: JSON.stringify({ username: 'ben' }) });
      return JSON.parse(await r.text()).user_id;
    }, gateway);
    const composed = await page.evaluate(async ([gw, id]) => {
      const r = await fetch(`${gw}/function/compose-post-frontend`, { method: 'POST',
        body: JSON.stringify({ username: 'ben', user_id: id, post_type: 0,
          text: 'a post from ben for his followers', media_id: null, media_type: null }) });
      return r.status;
    }, [gateway, benId]);
    check(composed === 200, `ben's post failed: ${composed}`);
    await page.goto(`${base}/main`);
    const home = (await text(page, '#home-timeline')) || '';
    check(home.includes('a post from ben for his followers'), `ben's post is not on the home timeline: ${home}`);
    check((await text(page, '#user-timeline')).includes('not bold'), 'ann\'s own post is gone');
    await shot(page, '04-home-timeline');

    // Unfollow, log out.
    await page.goto(`${base}/profile?user=ben`);
    await Promise.all([page.waitForNavigation(), page.click('#unfollow')]);
    check((await text(page, '#followers')) === '0', 'unfollowing did not count');
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    check(await page.locator('#login').count() === 1, 'logging out did not return to the login page');
    await page.goto(`${base}/main`);
    check(await page.locator('#login').count() === 1, 'the main page is shown without a session');
    await shot(page, '05-logged-out');
  } finally {
    await browser.close();
  }
}

main().then(() => console.log('ok'), (error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
