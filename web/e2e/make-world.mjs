// Makes web/static/vendor/world.json from world-atlas (run once; see VENDOR.md):
//   npm i --no-save world-atlas@2.0.2 topojson-client@3.1.0 topojson-simplify@3.0.3 && node make-world.mjs
import fs from 'fs';
import * as tc from 'topojson-client';
import * as ts from 'topojson-simplify';
const topo = JSON.parse(fs.readFileSync('node_modules/world-atlas/countries-50m.json'));
const pre = ts.presimplify(topo);
const simp = ts.simplify(pre, ts.quantile(pre, 0.25));
const geo = tc.feature(simp, simp.objects.countries);
// keep every country, even those simplified to nothing: fall back to 50m shape
const orig = tc.feature(topo, topo.objects.countries);
const round = (c) => Array.isArray(c[0]) ? c.map(round) : [Math.round(c[0]*100)/100, Math.round(c[1]*100)/100];
const out = {type:'FeatureCollection', features: geo.features.map((f,i) => {
  let g = f.geometry;
  if (!g) g = orig.features[i].geometry;
  return {type:'Feature', properties:{name:f.properties.name}, geometry: g && {type:g.type, coordinates: round(g.coordinates)}};
}).filter(f => f.geometry)};
fs.writeFileSync('../static/vendor/world.json', JSON.stringify(out));
console.log(out.features.length, fs.statSync('../static/vendor/world.json').size);
const names = out.features.map(f=>f.properties.name);
for (const n of ["Turkey", "San Marino", "Samoa", "Republic of Korea", "Bosnia and Herzegovina", "Austria", "Cayman Islands","Antigua and Barbuda", "Greece", "Guernsey", "Iceland", "Lithuania", "Liechtenstein", "Mauritius","Peru", "Falkland Islands (Malvinas)", "United Kingdom", "Ireland", "Portugal", "Canada","Chile", "Japan", "Kenya", "Norway", "Vietnam", "Uruguay", "Morocco", "Estonia", "Fiji", "Nepal"]) if (!names.includes(n)) console.log('missing', n, names.filter(x=>x.includes(n.split(' ')[0])));
