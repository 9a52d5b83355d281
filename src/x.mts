const m: any = await import('onnxruntime-node')
console.log(Object.keys(m).length, typeof m.InferenceSession)
