// Replacements for two tfjs-backend-wasm kernels that copy where nothing needs copying.
//
// Under a gradient tape tfjs saves every tensor a gradient needs through Identity (a clone), and
// that clone's own gradient is a Cast to float32. On wasm both kernels copy the buffer, so a MAF
// training step spent ~1 ms (~7%) copying [512, 100] activations that are never written: tfjs
// tensors are immutable (Variable.assign swaps in another buffer). These versions share the buffer
// under the backend's reference count, as wasm's own Reshape and the cpu backend's Identity do.
//
// Part of backend selection (backend.ts installs these when it takes wasm), so it imports tfjs itself
// rather than through backend.ts, which would make the two import each other.
import * as tf from '@tensorflow/tfjs';

interface WasmBackendRef {
  incRef(dataId: object): void;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function alias(x: tf.TensorInfo, backend: WasmBackendRef): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let installed = false;

/** Swaps in the sharing Identity and same-dtype Cast for the wasm backend; idempotent. */
export function installWasmKernels(): void {
  if (installed) return;
  const identity = tf.getKernel('Identity', 'wasm');
  const cast = tf.getKernel('Cast', 'wasm');
  if (!identity || !cast) return;
  const copyIdentity = identity.kernelFunc;
  const copyCast = cast.kernelFunc;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      // Strings live outside the wasm heap; keep the original path for them.
      if (x.dtype === 'string') return copyIdentity(args);
      return alias(x, args.backend as unknown as WasmBackendRef);
    },
  });
  tf.unregisterKernel('Cast', 'wasm');
  tf.registerKernel({
    kernelName: 'Cast',
    backendName: 'wasm',
    kernelFunc: (args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' || x.dtype !== args.attrs?.dtype) return copyCast(args);
      return alias(x, args.backend as unknown as WasmBackendRef);
    },
  });
  installed = true;
}
