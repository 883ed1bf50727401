// Prints the C/C++ sources binding.gyp compiles, relative to the directory it runs from, so
// that the file lists live here once instead of as inline JavaScript in gyp strings:
//   node sources.js core <root>          native/core/*.cpp and the binding (native/node/*.cpp)
//   node sources.js third_party <root>   hiredis, zstd and SQLite from native/third_party/
// The third-party list matches CMakeLists.txt's liner_third_party.
'use strict';
const fs = require('fs');
const path = require('path');

const [which, root] = process.argv.slice(2);
const listed = (dir, ext) => fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(ext)).sort()
  .map((f) => `${root}/${dir}/${f}`);

const lists = {
  core: () => [...listed('native/core', '.cpp'), ...listed('native/node', '.cpp')],
  third_party: () => [
    ...['alloc', 'async', 'hiredis', 'net', 'read', 'sds', 'ssl'].map((f) => `${root}/native/third_party/hiredis/hiredis/${f}.c`),
    ...['common', 'compress', 'decompress'].flatMap((d) => listed(`native/third_party/zstd/${d}`, '.c')),
    `${root}/native/third_party/sqlite/sqlite3.c`,
  ],
};
if (!lists[which] || !root) {
  console.error('usage: node sources.js core|third_party <root>');
  process.exit(2);
}
console.log(lists[which]().join(' '));
