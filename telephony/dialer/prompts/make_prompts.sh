#!/usr/bin/env bash
# Regenerates the dialer's embedded default prompts (8 kHz, 16-bit, mono PCM WAV). Run once by hand and commit
# the WAV files: espeak-ng and sox are build-time tools only.
#   apt-get install -y espeak-ng sox; telephony/dialer/prompts/make_prompts.sh
set -eu
cd "$(dirname "$0")"
say() { espeak-ng -v cmn -s 190 -w .raw.wav "$2" && sox .raw.wav -r 8000 -c 1 -b 16 -e signed-integer "$1" norm -3 && rm -f .raw.wav; }
say callback_question.wav "您好，这里是12345热线回访。您对工单的办理结果满意请按1，基本满意请按2，不满意请按3。"
say callback_bye.wav      "感谢您的评价，再见。"
say income_question.wav   "您好，这里是乡村振兴局。您家近三个月收入是否明显下降？是请按1，否请按2。不希望再接到此类电话请按9。"
say health_question.wav   "家里是否有人生大病或者受伤？是请按1，否请按2。"
say survey_bye.wav        "感谢您的配合，再见。"
soxi -D *.wav
