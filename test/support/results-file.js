// Writes jest's aggregated results to a file so CI can count what ran.
const fs = require('fs');
const path = require('path');
module.exports = (results) => {
  const file = process.env.SIFKIT_TEST_RESULTS || path.join(__dirname, '..', '..', '.test-results.json');
  fs.writeFileSync(file, JSON.stringify(results));
  return results;
};
