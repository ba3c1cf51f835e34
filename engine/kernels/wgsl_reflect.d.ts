// The package's ES module build (its CommonJS main hides named exports from Node's ESM loader).
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
