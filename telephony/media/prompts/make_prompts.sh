#!/usr/bin/env bash
# Regenerates the embedded default prompts (8 kHz, 16-bit, mono PCM WAV: what diago plays over G.711 without
# resampling). Run once by hand and commit the WAV files: espeak-ng and sox are build-time tools only.
#   apt-get install -y espeak-ng sox; telephony/media/prompts/make_prompts.sh
set -eu
cd "$(dirname "$0")"
say() { espeak-ng -v cmn -s 190 -w .raw.wav "$2" && sox .raw.wav -r 8000 -c 1 -b 16 -e signed-integer "$1" norm -3 && rm -f .raw.wav; }
# The greeting is short (about 5 s) and starts with the recording notice (about 2 s, HOTLINE_GREETING_MIN):
# the agent is rung while it plays, and a caller whose agent answers early hears the notice and is put through.
# Spoken faster and trimmed of leading and trailing silence; "幺二三四五" is how the number is read on the phone.
greet() { espeak-ng -v cmn -s 240 -w .raw.wav "$2" && sox .raw.wav -r 8000 -c 1 -b 16 -e signed-integer "$1" \
  silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3 && rm -f .raw.wav; }
greet greeting.wav "通话将被录音。幺二三四五乡村振兴专席。"
say queue.wav     "坐席忙，请稍候。"
say voicemail.wav "暂时无人接听，请在提示音后留言，按井号键结束。"
say closed.wav    "现在是非工作时间，请在提示音后留言，按井号键结束。"
say thanks.wav    "留言已收到，我们会尽快回电。再见。"
say short.wav     "您好。"
# Hold music: a quiet, slow two-tone chime, 4 s, looped while waiting.
sox -n -r 8000 -c 1 -b 16 -e signed-integer hold.wav synth 0.6 sine 523.25 synth 0.6 sine 659.25 fade 0.05 0.6 0.2 \
  pad 0 0.4 repeat 3 vol 0.25
# Beep before recording: 1 kHz, 300 ms.
sox -n -r 8000 -c 1 -b 16 -e signed-integer beep.wav synth 0.3 sine 1000 vol 0.5
soxi -D *.wav
