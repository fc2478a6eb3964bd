// Generates the config parser at build time (never committed; see .gitignore).
export default {
  input: "grammar/pies.peggy",
  output: "src/config/generated/parser.js",
  format: "es",
  dts: true,
  allowedStartRules: ["File", "Value"],
  returnTypes: {
    File: "import('../ast.js').FileNode",
    Value: "import('../ast.js').ValueNode",
  },
};
