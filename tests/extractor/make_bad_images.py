"""Writes the bad and unusual images of the extractor's rejects test with PIL
and zlib (independent of OpenCV and uniter-cpp).

usage: make_bad_images.py OUT_DIR PHOTO.jpg
  cmyk.jpg       a CMYK JPEG (Adobe APP14), as print workflows write them
  cut_jpeg.jpg   the first half of PHOTO
  cut_png.png    PHOTO as PNG, cut at 60%
  anim.gif       a GIF (OpenCV, hence cv2.imread, has no GIF decoder)
  bomb.png       a 30000x30000 8-bit gray PNG of ~1 MB (a decompression bomb)
"""
import io
import os
import struct
import sys
import zlib

from PIL import Image


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def write_bomb(path, side):
    comp = zlib.compressobj(1)
    row = b'\x00' * (side + 1)  # filter byte 0 + black pixels
    parts = []
    for _ in range(side // 100):
        parts.append(comp.compress(row * 100))
    parts.append(comp.compress(row * (side % 100)))
    parts.append(comp.flush())
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(png_chunk(b'IHDR', struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0)))
        f.write(png_chunk(b'IDAT', b''.join(parts)))
        f.write(png_chunk(b'IEND', b''))


def main():
    out, photo = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    im = Image.open(photo).convert('RGB')
    im.convert('CMYK').save(f'{out}/cmyk.jpg', 'JPEG', quality=90)
    data = open(photo, 'rb').read()
    open(f'{out}/cut_jpeg.jpg', 'wb').write(data[:len(data) // 2])
    buf = io.BytesIO()
    im.save(buf, 'PNG')
    png = buf.getvalue()
    open(f'{out}/cut_png.png', 'wb').write(png[:len(png) * 6 // 10])
    im.resize((40, 30)).save(f'{out}/anim.gif', 'GIF')
    write_bomb(f'{out}/bomb.png', 30000)


if __name__ == '__main__':
    main()
