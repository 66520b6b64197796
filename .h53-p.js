let last=process.hrtime.bigint();
for (const p of process.argv.slice(2)) { require(p); const n=process.hrtime.bigint(); console.log(p, (Number(n-last)/1e6).toFixed(0)); last=n; }
